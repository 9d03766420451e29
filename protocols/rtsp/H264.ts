/**
 * H.264 Annex-B elementary streams: splitting a byte stream into NAL units on
 * start codes, grouping NAL units into access units (one coded picture each),
 * and reading the few SPS fields that SDP needs.
 *
 * Owns only the bitstream view; RTP packetization lives in `RtpH264.ts`.
 */

export const NalType = {
  NonIdrSlice: 1,
  IdrSlice: 5,
  Sei: 6,
  Sps: 7,
  Pps: 8,
  AccessUnitDelimiter: 9,
  EndOfSequence: 10,
  EndOfStream: 11,
  Filler: 12,
  StapA: 24,
  FuA: 28
} as const

export const nalType = (nal: Uint8Array): number => nal[0]! & 0x1f

const isVcl = (type: number): boolean => type >= 1 && type <= 5

/**
 * Splits an Annex-B byte stream into NAL units (without start codes). Trailing
 * zero bytes before the next start code (trailing_zero_8bits, or the leading
 * zero of a 4-byte start code) are not part of the NAL unit.
 */
export const splitAnnexB = (stream: Uint8Array): Array<Uint8Array> => {
  const nals: Array<Uint8Array> = []
  const length = stream.length
  let nalStart = -1
  let i = 0
  while (i + 2 < length) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      if (nalStart >= 0) pushTrimmed(nals, stream, nalStart, i)
      i += 3
      nalStart = i
    } else if (stream[i + 2]! > 1) {
      // No start code can begin at i, i+1 or i+2 if stream[i+2] > 1.
      i += 3
    } else {
      i += 1
    }
  }
  if (nalStart >= 0) pushTrimmed(nals, stream, nalStart, length)
  return nals
}

const pushTrimmed = (nals: Array<Uint8Array>, stream: Uint8Array, start: number, end: number): void => {
  let last = end
  while (last > start && stream[last - 1] === 0) last--
  if (last > start) nals.push(stream.subarray(start, last))
}

/** One coded picture with the parameter sets and SEI that precede it. */
export interface AccessUnit {
  readonly nalUnits: ReadonlyArray<Uint8Array>
  /** Contains an IDR slice: a decoder can start here. */
  readonly keyframe: boolean
}

/**
 * Groups NAL units into access units following H.264 7.4.1.2.3: a new access
 * unit starts at an AUD, SPS, PPS, SEI or NAL type 14..18, or at the first
 * slice of a new picture (first_mb_in_slice == 0), once the current access
 * unit already holds a slice. Access unit delimiters are dropped.
 */
export const groupAccessUnits = (nals: ReadonlyArray<Uint8Array>): Array<AccessUnit> => {
  const units: Array<AccessUnit> = []
  let current: Array<Uint8Array> = []
  let hasSlice = false
  let keyframe = false
  const flush = () => {
    if (hasSlice) units.push({ nalUnits: current, keyframe })
    current = []
    hasSlice = false
    keyframe = false
  }
  for (const nal of nals) {
    const type = nalType(nal)
    const startsPrefix = type === NalType.AccessUnitDelimiter || type === NalType.Sps || type === NalType.Pps ||
      type === NalType.Sei || (type >= 14 && type <= 18)
    if (hasSlice && (startsPrefix || (isVcl(type) && isFirstSliceOfPicture(nal)))) flush()
    if (type === NalType.AccessUnitDelimiter) continue
    current.push(nal)
    if (isVcl(type)) hasSlice = true
    if (type === NalType.IdrSlice) keyframe = true
  }
  flush()
  return units
}

/** first_mb_in_slice is ue(v) at the start of the slice header; ue == 0 is a single 1 bit. */
const isFirstSliceOfPicture = (nal: Uint8Array): boolean => nal.length > 1 && (nal[1]! & 0x80) !== 0

/** The `profile-level-id` of RFC 6184: profile_idc, constraint flags and level_idc as 6 hex digits. */
export const profileLevelId = (sps: Uint8Array): string =>
  Array.from(sps.subarray(1, 4), (byte) => byte.toString(16).padStart(2, "0")).join("").toUpperCase()

/** Reads the coded picture size from an SPS (frame cropping applied). */
export const spsPictureSize = (sps: Uint8Array): { readonly width: number; readonly height: number } => {
  const bits = new ExpGolombReader(unescapeRbsp(sps.subarray(1)))
  const profileIdc = bits.bits(8)
  bits.bits(16) // constraint flags, level_idc
  bits.ue() // seq_parameter_set_id
  let chromaFormatIdc = 1
  if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profileIdc)) {
    chromaFormatIdc = bits.ue()
    if (chromaFormatIdc === 3) bits.bits(1)
    bits.ue() // bit_depth_luma_minus8
    bits.ue() // bit_depth_chroma_minus8
    bits.bits(1) // qpprime_y_zero_transform_bypass_flag
    if (bits.bits(1) === 1) {
      for (let i = 0; i < (chromaFormatIdc === 3 ? 12 : 8); i++) {
        if (bits.bits(1) === 1) skipScalingList(bits, i < 6 ? 16 : 64)
      }
    }
  }
  bits.ue() // log2_max_frame_num_minus4
  const picOrderCntType = bits.ue()
  if (picOrderCntType === 0) {
    bits.ue()
  } else if (picOrderCntType === 1) {
    bits.bits(1)
    bits.se()
    bits.se()
    const cycle = bits.ue()
    for (let i = 0; i < cycle; i++) bits.se()
  }
  bits.ue() // max_num_ref_frames
  bits.bits(1) // gaps_in_frame_num_value_allowed_flag
  const widthInMbs = bits.ue() + 1
  const heightInMapUnits = bits.ue() + 1
  const frameMbsOnly = bits.bits(1)
  if (frameMbsOnly === 0) bits.bits(1)
  bits.bits(1) // direct_8x8_inference_flag
  let width = widthInMbs * 16
  let height = (2 - frameMbsOnly) * heightInMapUnits * 16
  if (bits.bits(1) === 1) {
    const cropUnitX = chromaFormatIdc === 0 || chromaFormatIdc === 3 ? 1 : 2
    const cropUnitY = (chromaFormatIdc === 1 ? 2 : 1) * (2 - frameMbsOnly)
    const left = bits.ue()
    const right = bits.ue()
    const top = bits.ue()
    const bottom = bits.ue()
    width -= (left + right) * cropUnitX
    height -= (top + bottom) * cropUnitY
  }
  return { width, height }
}

const skipScalingList = (bits: ExpGolombReader, size: number): void => {
  let last = 8
  let next = 8
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + bits.se() + 256) % 256
    last = next === 0 ? last : next
  }
}

/** Removes emulation prevention bytes (00 00 03 → 00 00). */
const unescapeRbsp = (data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(data.length)
  let n = 0
  let zeros = 0
  for (const byte of data) {
    if (zeros >= 2 && byte === 3) {
      zeros = 0
      continue
    }
    out[n++] = byte
    zeros = byte === 0 ? zeros + 1 : 0
  }
  return out.subarray(0, n)
}

class ExpGolombReader {
  readonly data: Uint8Array
  position = 0
  constructor(data: Uint8Array) {
    this.data = data
  }
  bits(count: number): number {
    let value = 0
    for (let i = 0; i < count; i++) {
      const byte = this.data[this.position >> 3] ?? 0
      value = value * 2 + ((byte >> (7 - (this.position & 7))) & 1)
      this.position++
    }
    return value
  }
  ue(): number {
    let zeros = 0
    while (this.bits(1) === 0 && zeros < 32) zeros++
    return 2 ** zeros - 1 + this.bits(zeros)
  }
  se(): number {
    const value = this.ue()
    return value % 2 === 1 ? (value + 1) / 2 : -value / 2
  }
}
