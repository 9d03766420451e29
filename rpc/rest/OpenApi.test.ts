/**
 * The OpenAPI document at `/api/v1/openapi.json` validates with a standard
 * OpenAPI 3.1 validator and describes every REST route of the `Api`; the
 * docs page is served and loads nothing but the document.
 */
import { assert, describe, it } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import { Effect } from "effect"
import { harness } from "../../test/support/RpcHarness.ts"
import { Api, openapiPath } from "./RestApi.ts"

const routesOf = () => {
  const routes: Array<string> = []
  for (const group of Object.values(Api.groups)) {
    for (const endpoint of Object.values(group.endpoints)) {
      routes.push(`${endpoint.method.toLowerCase()} ${endpoint.path.replace(/:(\w+)/g, "{$1}")}`)
    }
  }
  return routes.sort()
}

describe("OpenAPI document", () => {
  it.live("validates and describes every REST route; the docs page renders it", () =>
    Effect.gen(function*() {
      const node = yield* harness()
      const document = yield* Effect.promise(() => fetch(`${node.http}${openapiPath}`).then((r) => r.json() as Promise<any>))
      const result = yield* Effect.promise(() => new Validator().validate(document))
      assert.isTrue(result.valid, JSON.stringify(result.errors, null, 2))
      assert.strictEqual(document.openapi.slice(0, 3), "3.1")

      const described: Array<string> = []
      for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, unknown>>)) {
        for (const method of Object.keys(item)) described.push(`${method} ${path}`)
      }
      const routes = routesOf()
      assert.isAtLeast(routes.length, 15)
      assert.deepStrictEqual(described.sort(), routes)
      for (const route of ["post /api/v1/auth/login", "post /api/v1/tokens", "get /api/v1/cameras/{id}/status"]) {
        assert.include(routes, route)
      }

      const page = yield* Effect.promise(() => fetch(`${node.http}/api/v1/docs`).then(async (r) => ({ status: r.status, type: r.headers.get("content-type"), text: await r.text() })))
      assert.strictEqual(page.status, 200)
      assert.include(page.type ?? "", "text/html")
      assert.include(page.text, openapiPath)
      assert.notMatch(page.text, /https?:\/\//)
    }))
})
