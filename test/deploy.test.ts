/**
 * The deployment material is checked by the tools that will run it: the NATS
 * config by `nats-server -t`, the Prometheus configs and alert rules by
 * promtool, and the compose file and Kubernetes manifests are parsed and
 * held to the node's configuration (every VMS_* they set is a real setting)
 * and to each other (the NATS config and alert rules are the same everywhere).
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parse, parseAllDocuments } from "yaml"
import { fields } from "../runtime/config/NodeConfig.ts"
import { requireBinary } from "./support/Binaries.ts"
import { projectRoot } from "./support/NodeProcess.ts"

const deploy = path.join(projectRoot, "deploy")
const read = (file: string) => fs.readFileSync(path.join(deploy, file), "utf8")
const settings = new Set(Object.values(fields).map((field) => field.env))
const withoutComments = (text: string) =>
  text.split("\n").map((line) => line.replace(/\s+$/, "")).filter((line) => line.trim() !== "" && !line.trim().startsWith("#")).join("\n")

const manifests = fs.readdirSync(path.join(deploy, "k8s")).filter((f) => f.endsWith(".yaml")).sort()
const k8sDocuments = manifests.flatMap((file) =>
  parseAllDocuments(read(`k8s/${file}`)).map((doc) => ({ file, doc: doc.toJS() as Record<string, any> })).filter(({ doc }) => doc !== null)
)
const configMap = (name: string) => k8sDocuments.find(({ doc }) => doc.kind === "ConfigMap" && doc.metadata.name === name)!.doc

const inTemp = <A>(files: Record<string, string>, run: (dir: string) => A): A => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vms-deploy-"))
  try {
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
    return run(dir)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

describe("deploy/", () => {
  it("the NATS server config is valid for nats-server, and the Kubernetes copy is the same", () => {
    const natsServer = requireBinary("nats-server")
    const env = { ...process.env, NATS_SERVER_NAME: "nats-0" }
    execFileSync(natsServer, ["-t", "-c", path.join(deploy, "nats/nats-server.conf")], { env, stdio: "pipe" })
    assert.strictEqual(withoutComments(configMap("nats-config").data["nats-server.conf"]), withoutComments(read("nats/nats-server.conf")))
  })

  it("Prometheus configs and alert rules pass promtool", () => {
    const promtool = requireBinary("promtool")
    const alerts = read("prometheus/alerts.yml")
    execFileSync(promtool, ["check", "rules", path.join(deploy, "prometheus/alerts.yml")], { stdio: "pipe" })
    execFileSync(promtool, ["check", "config", path.join(deploy, "prometheus/prometheus.yml")], { stdio: "pipe" })
    const k8s = configMap("prometheus").data
    assert.strictEqual(withoutComments(k8s["alerts.yml"]), withoutComments(alerts))
    const compose = read("prometheus/prometheus-compose.yml").replace("/etc/prometheus/alerts.yml", "alerts.yml")
    inTemp({ "alerts.yml": alerts, "prometheus.yml": compose }, (dir) =>
      execFileSync(promtool, ["check", "config", path.join(dir, "prometheus.yml")], { stdio: "pipe" }))
    // Debian's promtool is built without Kubernetes service discovery, so the in-cluster config is
    // checked for its shape: the rules file, and a pod-discovery job keeping annotated pods.
    const inCluster = parse(k8s["prometheus.yml"]) as { rule_files: Array<string>; scrape_configs: Array<Record<string, any>> }
    assert.deepStrictEqual(inCluster.rule_files, ["/etc/prometheus/alerts.yml"])
    const job = inCluster.scrape_configs.find((c) => c.job_name === "vms")!
    assert.strictEqual(job.kubernetes_sd_configs[0].role, "pod")
    assert.include(job.relabel_configs.map((r: { action?: string }) => r.action), "keep")
  })

  it("the compose file runs 3 NATS servers, Postgres, Redis, MinIO, Prometheus and 3 nodes with real settings", () => {
    const compose = parse(read("compose.yaml"), { merge: true }) as { services: Record<string, any> }
    const services = Object.keys(compose.services)
    for (const name of ["nats-0", "nats-1", "nats-2", "postgres", "redis", "minio", "prometheus", "vms-1", "vms-2", "vms-3"]) {
      assert.include(services, name)
    }
    const nodeIds = new Set<string>()
    for (const name of ["vms-1", "vms-2", "vms-3"]) {
      const environment = compose.services[name].environment as Record<string, string>
      for (const key of Object.keys(environment)) assert.isTrue(settings.has(key), `${name} sets ${key}, which is no setting`)
      assert.match(environment.VMS_NATS_URL!, /^nats:\/\//)
      nodeIds.add(environment.VMS_NODE_ID!)
    }
    assert.strictEqual(nodeIds.size, 3, "every node has its own id")
  })

  it("the Kubernetes manifests describe NATS, Postgres, Redis, MinIO, Prometheus and 3 nodes with real settings", () => {
    const kinds = k8sDocuments.map(({ doc }) => `${doc.kind}/${doc.metadata.name}`)
    for (const expected of ["StatefulSet/nats", "StatefulSet/postgres", "Deployment/redis", "StatefulSet/minio", "StatefulSet/vms", "Deployment/prometheus"]) {
      assert.include(kinds, expected)
    }
    for (const { doc, file } of k8sDocuments) {
      assert.isString(doc.apiVersion, file)
      if (doc.kind !== "Namespace") assert.strictEqual(doc.metadata.namespace, "vms", `${file}: ${doc.kind}/${doc.metadata.name}`)
    }
    const vms = k8sDocuments.find(({ doc }) => doc.kind === "StatefulSet" && doc.metadata.name === "vms")!.doc
    assert.strictEqual(vms.spec.replicas, 3)
    assert.strictEqual(k8sDocuments.find(({ doc }) => doc.kind === "StatefulSet" && doc.metadata.name === "nats")!.doc.spec.replicas, 3)
    const container = vms.spec.template.spec.containers[0]
    const secret = k8sDocuments.find(({ doc }) => doc.kind === "Secret" && doc.metadata.name === "vms")!.doc
    for (const name of [...container.env.map((e: { name: string }) => e.name), ...Object.keys(secret.stringData)]) {
      assert.isTrue(settings.has(name), `the vms StatefulSet sets ${name}, which is no setting`)
    }
    assert.strictEqual(container.readinessProbe.httpGet.path, "/health/ready")
  })
})
