/**
 * JSON-RPC 2.0 messages as `/ws` writes them: the standard error codes,
 * responses and error responses, the checks of ids and params objects, and
 * how a failed call becomes an error (a typed failure keeps its tag and
 * fields in `data`; defects are -32603 without details).
 */
import { Schema, SchemaIssue } from "effect"
import { domainErrorCodes } from "./VmsRpcs.ts"

export const codes = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603
} as const

export type JsonRpcId = string | number | null

export interface JsonRpcError {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

export const response = (id: JsonRpcId, body: { readonly result: unknown } | { readonly error: JsonRpcError }) => ({
  jsonrpc: "2.0" as const,
  id,
  ...body
})

export const errorResponse = (id: JsonRpcId, error: JsonRpcError) => response(id, { error })

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

export const isId = (value: unknown): value is JsonRpcId =>
  value === null || typeof value === "string" || (typeof value === "number" && Number.isFinite(value))

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) =>
    issue._tag === "MissingKey"
      ? "is required"
      : issue._tag === "UnexpectedKey"
      ? "is not a known field"
      : SchemaIssue.defaultLeafHook(issue)
})

export const describe = (error: Schema.SchemaError) =>
  formatIssues(error.issue).issues.map((issue) => ({
    field: issue.path === undefined || issue.path.length === 0
      ? "params"
      : issue.path.map((segment) => String(typeof segment === "object" && segment !== null ? segment.key : segment))
        .join("."),
    message: issue.message
  }))

/** A failed call's error: the first typed failure, else a defect (-32603, details only in the log). */
export const exitError = (exit: { readonly _tag: "Failure"; readonly cause: ReadonlyArray<any> }): JsonRpcError => {
  const fail = exit.cause.find((reason) => reason._tag === "Fail")
  if (fail !== undefined && isObject(fail.error) && typeof fail.error._tag === "string") {
    const error = fail.error
    const tag = error._tag as string
    return {
      code: tag === "InvalidParams" ? codes.invalidParams : domainErrorCodes[tag] ?? -32000,
      message: typeof error.message === "string" && error.message !== "" ? error.message : tag,
      data: error
    }
  }
  if (exit.cause.every((reason) => reason._tag === "Interrupt")) {
    return { code: codes.internalError, message: "the call was interrupted" }
  }
  return { code: codes.internalError, message: "internal error" }
}

