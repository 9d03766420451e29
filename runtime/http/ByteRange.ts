/**
 * HTTP `Range: bytes=…` for one range (what players and download managers
 * send): parsed against the resource size into an inclusive byte span, or
 * `unsatisfiable` (answer 416), or `undefined` for no usable range (answer
 * the whole resource). Multiple ranges are answered whole.
 */

export type RangeResult = { readonly start: number; readonly end: number } | "unsatisfiable" | undefined

export const parse = (header: string | undefined, size: number): RangeResult => {
  if (header === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (match === null) return undefined
  const [, first, last] = match
  if (first === "" && last === "") return undefined
  if (first === "") {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return "unsatisfiable"
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (start >= size) return "unsatisfiable"
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1)
  return end < start ? undefined : { start, end }
}

export const contentRange = (span: { readonly start: number; readonly end: number }, size: number) =>
  `bytes ${span.start}-${span.end}/${size}`
