// The bench page: reads the form, runs bench-worker.js, shows each row and offers the rows as
// JSON in the shape of `wasmformer bench -o json` (so `wasmformer compare` reads them).

const $ = (id) => document.getElementById(id);
const ints = (id) => $(id).value.split(",").map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n >= 0);
const artifact = new URLSearchParams(location.search).get("artifact");
if (artifact) $("base").value = artifact;

$("form").onsubmit = (e) => {
  e.preventDefault();
  $("run").disabled = true;
  $("download").hidden = true;
  $("results").tBodies[0].replaceChildren();
  const worker = new Worker(new URL("./bench-worker.js", import.meta.url), { type: "module" });
  worker.onmessage = ({ data: m }) => {
    if (m.type === "progress" || m.type === "note") $("status").textContent = m.text;
    if (m.type === "error") $("status").textContent = `error: ${m.text}`;
    if (m.type === "done") {
      for (const r of m.rows) {
        const tr = $("results").tBodies[0].insertRow();
        for (const v of [r.model, r.test, r.threads, r.variant, `${r.tokens_per_s.toFixed(2)} ± ${r.sd.toFixed(2)}`]) tr.insertCell().textContent = v;
      }
      const blob = new Blob([JSON.stringify(m.rows, null, 2)], { type: "application/json" });
      $("download").href = URL.createObjectURL(blob);
      $("download").hidden = false;
      $("status").textContent = `done: ${m.rows.length} rows`;
      window.wasmformerBench = m.rows;
    }
    if (m.type === "done" || m.type === "error") {
      $("run").disabled = false;
      worker.terminate();
    }
  };
  worker.postMessage({ base: new URL($("base").value, location.href).href, prompt: ints("prompt"), gen: ints("gen"), depths: ints("depths"), repetitions: Math.max(1, ints("repetitions")[0] ?? 5), threads: ints("threads") });
};
