/**
 * `GET /api/v1/docs`: a page that renders the REST API's OpenAPI document
 * (`/api/v1/openapi.json`) as a readable list of endpoints, with their
 * parameters, bodies, answers and errors. Self-contained (no CDN, nothing
 * fetched but the document), so it works on a closed network.
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { openapiPath } from "./RestApi.ts"

export const docsPath = "/api/v1/docs"

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vms REST API</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.op { border: 1px solid #ddd; border-radius: 6px; margin: .8rem 0; padding: .6rem .9rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: 700; font-family: monospace; }
.path { font-family: monospace; font-size: 1rem; }
pre { background: #f6f8fa; padding: .5rem; overflow: auto; font-size: 12px; }
details summary { cursor: pointer; color: #555; }
.status { font-family: monospace; font-weight: 700; }
</style>
</head>
<body>
<h1 id="title">vms REST API</h1>
<p>Machine-readable: <a href="${openapiPath}">${openapiPath}</a>. Send <code>Authorization: Bearer &lt;access token&gt;</code> or <code>X-API-Key</code>.</p>
<div id="api">Loading…</div>
<script>
const text = (value) => document.createTextNode(String(value))
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag)
  Object.assign(node, attrs || {})
  for (const child of children) node.append(typeof child === "string" ? text(child) : child)
  return node
}
const json = (value) => el("pre", {}, JSON.stringify(value, null, 2))
fetch(${JSON.stringify(openapiPath)}).then((r) => r.json()).then((doc) => {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version
  const root = document.getElementById("api")
  root.textContent = ""
  const byTag = new Map()
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other"
      if (!byTag.has(tag)) byTag.set(tag, [])
      byTag.get(tag).push([method, path, op])
    }
  }
  for (const [tag, ops] of byTag) {
    root.append(el("h2", {}, tag))
    const description = (doc.tags || []).find((t) => t.name === tag)
    if (description && description.description) root.append(el("p", {}, description.description))
    for (const [method, path, op] of ops) {
      const box = el("div", { className: "op" }, el("span", { className: "method" }, method.toUpperCase()), el("span", { className: "path" }, path))
      if (op.description) box.append(el("p", {}, op.description))
      if (op.parameters && op.parameters.length) {
        box.append(el("details", {}, el("summary", {}, "parameters"), json(op.parameters)))
      }
      if (op.requestBody) box.append(el("details", {}, el("summary", {}, "body"), json(op.requestBody.content)))
      for (const [status, response] of Object.entries(op.responses || {})) {
        box.append(el("details", {}, el("summary", {}, el("span", { className: "status" }, status), " " + (response.description || "")), json(response.content || {})))
      }
      root.append(box)
    }
  }
  if (doc.components && doc.components.schemas) {
    root.append(el("h2", {}, "schemas"))
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      root.append(el("details", {}, el("summary", {}, name), json(schema)))
    }
  }
}).catch((error) => { document.getElementById("api").textContent = "Could not load the document: " + error })
</script>
</body>
</html>
`

export const layer = Layer.effectDiscard(
  Effect.gen(function*() {
    const router = yield* HttpRouter.HttpRouter
    yield* router.add(
      "GET",
      docsPath,
      Effect.succeed(HttpServerResponse.html(page).pipe(HttpServerResponse.setHeader("cache-control", "no-cache")))
    )
  })
)
