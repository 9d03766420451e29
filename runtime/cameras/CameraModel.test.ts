import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Result, Schema, SchemaIssue } from "effect"
import { bodyParseOptions, CameraCreate, CameraUpdate, CameraView, maskUrl, maskUrlsIn } from "./CameraModel.ts"
import { CameraRecord } from "./CameraStore.ts"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** Decodes like the REST boundary does; answers the value or `field: message` lines. */
const decode = <S extends Schema.Decoder<unknown>>(schema: S, input: unknown) =>
  Effect.runSync(
    Schema.decodeUnknownEffect(schema)(input, bodyParseOptions).pipe(
      Effect.result,
      Effect.map(Result.mapError((error) =>
        formatIssues(error.issue).issues.map((issue) => `${(issue.path ?? []).join(".")}: ${issue.message}`)
      ))
    )
  )

const problems = (result: Result.Result<unknown, ReadonlyArray<string>>): Array<string> =>
  Result.isFailure(result) ? [...result.failure] : []

describe("maskUrl", () => {
  it("masks user and password and keeps host, port and path", () => {
    assert.strictEqual(maskUrl("rtsp://admin:s3cret@10.0.0.7:554/Streaming/101"), "rtsp://***:***@10.0.0.7:554/Streaming/101")
    assert.strictEqual(maskUrl("rtsps://viewer@cam.example:322/live"), "rtsps://***@cam.example:322/live")
    assert.strictEqual(maskUrl("rtsp://cam.example/live?channel=1"), "rtsp://cam.example/live?channel=1")
  })

  it("masks credential-like query values", () => {
    assert.strictEqual(
      maskUrl("rtsp://cam.example/live?user=admin&password=s3cret&channel=1"),
      "rtsp://cam.example/live?user=***&password=***&channel=1"
    )
  })

  it("never leaks a password from a URL that does not parse", () => {
    for (const url of ["rtsp://admin:pa/ss@cam/live", "rtsp://admin:p@ss@cam:99999/live", "admin:s3cret@cam"]) {
      const masked = maskUrl(url)
      assert.notInclude(masked, "ss@")
      assert.notInclude(masked, "s3cret")
      assert.notInclude(masked, "admin")
    }
  })

  it("masks every URL inside a message", () => {
    assert.strictEqual(
      maskUrlsIn("rtsp://admin:s3cret@cam:554/live: Connection refused"),
      "rtsp://***:***@cam:554/live: Connection refused"
    )
  })
})

describe("CameraCreate", () => {
  it("fills defaults and trims the name", () => {
    const result = decode(CameraCreate, { name: "  Gate A ", url: "rtsp://admin:pw@cam:554/live" })
    assert.deepStrictEqual(Result.getOrThrow(result), {
      name: "Gate A",
      url: "rtsp://admin:pw@cam:554/live",
      agencyId: "default",
      enabled: true,
      recording: false,
      retentionDays: null,
      locationName: null,
      latitude: null,
      longitude: null
    })
  })

  it("names every offending field, never echoing the URL", () => {
    const result = decode(CameraCreate, {
      id: "Not A Slug",
      name: "   ",
      url: "http://admin:s3cret@cam/live",
      enabled: "yes",
      retentionDays: 0,
      latitude: 91,
      longitude: -181,
      colour: "red"
    })
    const lines = problems(result)
    assert.includeMembers(lines, [
      "name: must not be empty",
      "url: must be an rtsp:// or rtsps:// URL with a host",
      "enabled: Expected boolean",
      "retentionDays: must be a whole number of days from 1 to 3650",
      "latitude: must be between -90 and 90",
      "longitude: must be between -180 and 180",
      "colour: Expected no excess property"
    ])
    assert.isTrue(lines.some((line) => line.startsWith("id: must be 1 to 64 characters")))
    assert.notInclude(lines.join("\n"), "s3cret")
  })

  it("requires name and url and bounds their length", () => {
    assert.includeMembers(problems(decode(CameraCreate, {})), ["name: Missing key", "url: Missing key"])
    assert.includeMembers(problems(decode(CameraCreate, { name: "x".repeat(201), url: `rtsp://cam/${"a".repeat(2048)}` })), [
      "name: must be at most 200 characters",
      "url: must be at most 2048 characters"
    ])
    assert.includeMembers(problems(decode(CameraCreate, { name: "n", url: "rtsp:///no-host" })), [
      "url: must be an rtsp:// or rtsps:// URL with a host"
    ])
    assert.includeMembers(problems(decode(CameraCreate, { name: "n", url: "rtsp://cam", retentionDays: 1.5 })), [
      "retentionDays: must be a whole number of days from 1 to 3650"
    ])
    assert.includeMembers(problems(decode(CameraCreate, { name: "n\u0000", url: "rtsp://cam/\u0000" })), [
      "name: must not contain control characters",
      "url: must not contain control characters"
    ])
    assert.isTrue(Result.isSuccess(decode(CameraCreate, { id: "gate-a_1", name: "n", url: "rtsps://cam" })))
  })
})

describe("CameraUpdate", () => {
  it("accepts a subset, with null clearing a nullable field", () => {
    assert.deepStrictEqual(Result.getOrThrow(decode(CameraUpdate, { latitude: null, enabled: false })), {
      latitude: null,
      enabled: false
    })
  })

  it("rejects an empty change, an id and a null where null means nothing", () => {
    assert.deepStrictEqual(problems(decode(CameraUpdate, {})), [": must change at least one field"])
    assert.deepStrictEqual(problems(decode(CameraUpdate, { id: "other" })), ["id: Expected no excess property"])
    assert.deepStrictEqual(problems(decode(CameraUpdate, { name: null })), ["name: Expected string"])
  })
})

describe("CameraView", () => {
  it("masks the URL and encodes timestamps as ISO-8601 UTC", () => {
    const at = DateTime.makeUnsafe("2026-03-01T12:00:00Z")
    const view = CameraView.fromRecord(
      new CameraRecord({
        id: "gate-a",
        agencyId: "default",
        name: "Gate A",
        url: "rtsp://admin:s3cret@cam:554/live",
        enabled: true,
        recording: false,
        retentionDays: null,
        locationName: null,
        latitude: null,
        longitude: null,
        createdAt: at,
        updatedAt: at
      })
    )
    const json = Schema.encodeSync(Schema.toCodecJson(CameraView))(view) as { readonly url: string; readonly createdAt: string }
    assert.strictEqual(json.url, "rtsp://***:***@cam:554/live")
    assert.strictEqual(json.createdAt, "2026-03-01T12:00:00.000Z")
    assert.notInclude(JSON.stringify(json), "s3cret")
  })
})
