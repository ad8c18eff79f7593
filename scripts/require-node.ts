// The suites need Node 24 (@kubernetes/client-node 2.x crashes on import under Node 20).
// npm scripts put the pinned `node` devDependency first on PATH; this proves it did.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`Node ${process.version} is running, but 24 or newer is needed: run 'npm ci' so the pinned Node is installed.`);
  process.exit(1);
}
console.error(`node ${process.version}`);
