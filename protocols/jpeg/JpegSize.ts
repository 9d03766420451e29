/**
 * Checks that bytes are a whole JPEG (SOI first, EOI last) and reads its
 * frame size from the SOF marker, used by snapshots and by the tests and benchmark that check them.
 */

export interface JpegSize {
  readonly width: number
  readonly height: number
}

/** SOF0…SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range. */
const isStartOfFrame = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc

/** The frame size of a complete JPEG, or `undefined` when the bytes are not one. */
export const jpegSize = (bytes: Uint8Array): JpegSize | undefined => {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined
  if (bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== 0xd9) return undefined
  let offset = 2
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return undefined
    const marker = bytes[offset + 1]!
    // Fill bytes, and markers without a length (TEM, RSTn).
    if (marker === 0xff) {
      offset += 1
      continue
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2
      continue
    }
    if (marker === 0xd9 || marker === 0xda) return undefined // EOI or scan data before any SOF
    const length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!
    if (isStartOfFrame(marker)) {
      if (offset + 9 > bytes.length) return undefined
      const height = (bytes[offset + 5]! << 8) | bytes[offset + 6]!
      const width = (bytes[offset + 7]! << 8) | bytes[offset + 8]!
      return width > 0 && height > 0 ? { width, height } : undefined
    }
    offset += 2 + length
  }
  return undefined
}
