// ViT (examples/vit.wf) against the PyTorch fixtures of tests/fixtures/make_vit.py: a bare ViTModel
// (image 18, patch 4: pixels past the last whole patch unread, no q/k/v biases) and a
// ViTForImageClassification (image 20, patch 4); the image preprocessing against Pillow and
// transformers' ViTImageProcessor (resizing bit for bit with every filter, PNG and JPEG files);
// classifyImage and `classify --image`; malformed configs and preprocessor configs.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readImageFile } from "../../compiler/cli/image.js";
import { compileModel } from "../../compiler/compile.js";
import { Diagnostic, InputError } from "../../compiler/diagnostics.js";
import { loadProgram, openWeights, programFromSource, readHfConfig } from "../../compiler/load.js";
import { runPipeline } from "../../compiler/passes/manager.js";
import { foldTranspose } from "../../compiler/passes/fold-transpose.js";
import { printGraph } from "../../ir/graph.js";
import { interpret, newSession } from "../../ir/interp.js";
import { parseGraphs } from "../../ir/parse.js";
import type { Param, Program } from "../../ir/types.js";
import { labelScores } from "../../runtime/embed.js";
import { classifyImage, imagePixels, resizeRgb, toRgb } from "../../runtime/image.js";
import type { Manifest } from "../../runtime/manifest.js";
import { Model } from "../../runtime/model.js";
import { loadArtifact } from "../../runtime/node.js";
import { decodeNpy } from "../../runtime/npy.js";
import { validateManifest } from "../../runtime/validate.js";
import { compileInMemory, fixtureDir, relError, rng, root } from "../helpers.js";
import { cli, expectOneLine } from "../cli/run-cli.js";

const TOL = 1e-4;
const example = join(root, "examples", "vit.wf");
const tmp = mkdtempSync(join(tmpdir(), "wf-vit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface VitCase {
  name: string;
  pixels: string;
  output: string;
  shape: number[];
}
interface VitFixture {
  output_kind: string;
  cases: VitCase[];
  image: { file: string; mode: string; width: number; height: number; case: string; resized: string };
  jpeg?: { file: string; decoded: string };
  resize?: { filter: string; resample: number; width: number; height: number; output: string }[];
}
const fixture = (name: string): VitFixture => JSON.parse(readFileSync(join(fixtureDir(name), "reference.json"), "utf8"));
const npy = (name: string, file: string) => decodeNpy(readFileSync(join(fixtureDir(name), file))).data;
const program = (name: string) => runPipeline(loadProgram(example, fixtureDir(name)));
const softmax = (xs: ArrayLike<number>) => {
  const m = Math.max(...Array.from(xs)), e = Array.from(xs, (x) => Math.exp(x - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

describe.each(["vit", "vit-cls"])("%s against PyTorch", (name) => {
  const fx = fixture(name);
  let p: Program;
  let model: Model;
  beforeAll(async () => {
    p = program(name);
    model = (await compileInMemory(p)).model;
  });

  for (const c of fx.cases) {
    it(`wasm and the interpreter: ${c.name}`, () => {
      const pixels = npy(name, c.pixels) as Float32Array;
      const want = npy(name, c.output);
      const out = model.runImage("forward", pixels);
      const got = fx.output_kind === "logits" ? out.logits : out.hidden;
      expect(got.length).toBe(c.shape[0] * c.shape[1]);
      expect(relError(got, want)).toBeLessThan(TOL);
      const interp = interpret(p, "forward", { pixels }, newSession());
      expect(relError((interp.logits ?? interp.hidden) as Float32Array, want)).toBeLessThan(TOL);
    });
  }

  it("one row a token: the class token and the whole patches, the context those rows", () => {
    const cfg = readHfConfig(fixtureDir(name));
    const grid = Math.floor((cfg.image_size as number) / (cfg.patch_size as number));
    expect(p.context).toBe(grid * grid + 1);
    const hidden = model.manifest.entries[0].outputs.find((o) => o.name === "hidden")!;
    expect([hidden.rows, hidden.width]).toEqual([String(grid * grid + 1), cfg.hidden_size]);
    expect(model.manifest.entries[0].inputs).toEqual([expect.objectContaining({ kind: "image", dtype: "f32", width: 3 * (cfg.image_size as number) ** 2, shape: [3, cfg.image_size, cfg.image_size] })]);
  });

  it("the image file through ViTImageProcessor's steps gives transformers' pixel values", () => {
    const raw = readImageFile(join(fixtureDir(name), fx.image.file));
    expect([raw.width, raw.height]).toEqual([fx.image.width, fx.image.height]);
    // the PNG decodes to the file's own pixels: resized as Pillow resizes them, byte for byte
    const S = readHfConfig(fixtureDir(name)).image_size as number;
    expect(Array.from(resizeRgb(toRgb(raw), raw.width, raw.height, S, S, 2))).toEqual(Array.from(npy(name, fx.image.resized)));
    const input = model.manifest.entries[0].inputs[0];
    const pre = compiledManifest(name).image!;
    const want = npy(name, `pixels_${fx.image.case}.npy`);
    expect(relError(imagePixels(raw, input, pre), want)).toBeLessThan(1e-6);
  });
});

/** The manifest compile writes for fixture `name` (compiled once, from the checkpoint folder). */
const compiled = new Map<string, string>();
function compiledDir(name: string): string {
  let out = compiled.get(name);
  if (!out) {
    out = join(tmp, name);
    compileModel(example, fixtureDir(name), out);
    compiled.set(name, out);
  }
  return out;
}
const compiledManifest = (name: string): Manifest => JSON.parse(readFileSync(join(compiledDir(name), "manifest.json"), "utf8"));

describe("preprocessor_config.json", () => {
  it("the manifest holds ViTImageProcessor's steps: the older feature-extractor form with its defaults, and a full one", () => {
    // vit/: size an int, no do_rescale or rescale_factor (transformers' defaults: true, 1/255)
    expect(compiledManifest("vit").image).toEqual({ resize: true, resample: 2, rescale: true, rescale_factor: 1 / 255, normalize: true, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(compiledManifest("vit-cls").image).toEqual({ resize: true, resample: 2, rescale: true, rescale_factor: 0.00392156862745098, normalize: true, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(compiledManifest("vit").classifier).toBeUndefined();
    expect(compiledManifest("vit-cls").classifier).toEqual({ labels: ["tabby", "tiger", "lynx", "ocelot", "margay"] });
  });

  /** The WF354 error of compiling vit-cls with preprocessor_config.json changed by `edit`. */
  function failure(edit: (c: Record<string, unknown>) => void): InputError | undefined {
    const dir = mkdtempSync(join(tmp, "pre-"));
    cpSync(fixtureDir("vit-cls"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "preprocessor_config.json"), "utf8"));
    edit(cfg);
    writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify(cfg));
    try {
      compileModel(example, dir, join(dir, "out"));
    } catch (e) {
      if (e instanceof InputError) return e;
      throw e;
    }
    return undefined;
  }

  it("a size other than the model's, a step not implemented, a bad value: one WF354 line naming the key", () => {
    const cases: [(c: Record<string, unknown>) => void, RegExp][] = [
      [(c) => (c.size = 224), /'size' should be the model's image size, 20 or \{"height": 20, "width": 20\}, found 224$/],
      [(c) => (c.size = { shortest_edge: 20 }), /'size' should be the model's image size/],
      [(c) => (c.do_center_crop = true), /'do_center_crop' should be false: center cropping is not implemented, found true$/],
      [(c) => (c.image_processor_type = "CLIPImageProcessor"), /'image_processor_type' is not one whose steps wasmformer implements \(ViTImageProcessor, ViTImageProcessorFast, ViTFeatureExtractor\), found "CLIPImageProcessor"$/],
      [(c) => (c.resample = 0), /'resample' should be a PIL filter from 1 to 5/],
      [(c) => (c.image_mean = [0.5, 0.5]), /'image_mean' should be a number or a list of 3 \(one a channel\), found \[0.5,0.5\]$/],
      [(c) => (c.image_std = [0.5, 0, 0.5]), /'image_std' should be a positive number or a list of 3/],
      [(c) => (c.do_normalize = "yes"), /'do_normalize' should be true or false, found "yes"$/],
    ];
    for (const [edit, message] of cases) {
      const e = failure(edit);
      expect(e?.code, String(message)).toBe("WF354");
      expect(e?.message).toMatch(message);
    }
    // one number for every channel, as transformers takes it
    expect(failure((c) => (c.image_std = 0.25))).toBeUndefined();
  });
});

describe("resizing as Pillow does", () => {
  const fx = fixture("vit-cls");
  const raw = readImageFile(join(fixtureDir("vit-cls"), fx.image.file));
  for (const r of fx.resize!)
    it(`${r.filter} (resample ${r.resample}), ${raw.width} × ${raw.height} → ${r.width} × ${r.height}: the same bytes`, () => {
      const got = resizeRgb(toRgb(raw), raw.width, raw.height, r.width, r.height, r.resample);
      expect(Array.from(got)).toEqual(Array.from(npy("vit-cls", r.output)));
    });

  it("RGB from gray, gray and alpha, and RGBA as PIL's convert('RGB'); the same size is a copy", () => {
    const px = (channels: number) => ({ data: Uint8Array.from({ length: 2 * channels }, (_, i) => 10 * i + 1), width: 2, height: 1 });
    expect(Array.from(toRgb(px(1)))).toEqual([1, 1, 1, 11, 11, 11]);
    expect(Array.from(toRgb(px(2)))).toEqual([1, 1, 1, 21, 21, 21]);
    expect(Array.from(toRgb(px(4)))).toEqual([1, 11, 21, 41, 51, 61]);
    const rgb = toRgb(px(3));
    expect(Array.from(resizeRgb(rgb, 2, 1, 2, 1, 3))).toEqual(Array.from(rgb));
    expect(() => toRgb({ data: new Uint8Array(5), width: 2, height: 1 })).toThrow(/5 bytes are not 2 × 1 pixels of 1 to 4 channels/);
    expect(() => resizeRgb(rgb, 2, 1, 3, 3, 0)).toThrow(/resample should be a PIL filter number from 1 to 5, got 0/);
  });

  it("a JPEG decodes within 3 levels of Pillow's (libjpeg) decoding; Pillow's pixels give transformers' values exactly", () => {
    const jpg = readImageFile(join(fixtureDir("vit-cls"), fx.jpeg!.file));
    const want = npy("vit-cls", fx.jpeg!.decoded);
    const got = toRgb(jpg);
    let max = 0, sum = 0;
    for (let i = 0; i < want.length; i++) {
      max = Math.max(max, Math.abs(got[i] - want[i]));
      sum += Math.abs(got[i] - want[i]);
    }
    expect(max).toBeLessThanOrEqual(3);
    expect(sum / want.length).toBeLessThan(1);
    const pillow = { data: Uint8Array.from(want), width: jpg.width, height: jpg.height, channels: 3 };
    const input = compiledManifest("vit-cls").entries[0].inputs[0];
    expect(relError(imagePixels(pillow, input, compiledManifest("vit-cls").image!), npy("vit-cls", "pixels_jpeg.npy"))).toBeLessThan(1e-6);
  });
});

describe("classifyImage and classify --image", () => {
  const fx = fixture("vit-cls");
  const labels = ["tabby", "tiger", "lynx", "ocelot", "margay"];
  const want = (c: string) => softmax(npy("vit-cls", `${c}.npy`)).map((score, i) => ({ label: labels[i], score })).sort((a, b) => b.score - a.score);

  it("decoded pixels or pixel values: id2label's names with the softmax of PyTorch's logits, topK kept", async () => {
    const model = await loadArtifact(compiledDir("vit-cls"));
    const png = readImageFile(join(fixtureDir("vit-cls"), fx.image.file));
    for (const [got, w] of [
      [classifyImage(model, png), want("image")],
      [classifyImage(model, npy("vit-cls", "pixels_random.npy") as Float32Array, { topK: 2 }), want("random").slice(0, 2)],
    ] as const) {
      expect(got.map((x) => x.label)).toEqual(w.map((x) => x.label));
      got.forEach((x, j) => expect(Math.abs(x.score - w[j].score)).toBeLessThan(1e-5));
    }
    expect(labelScores(npy("vit-cls", "image.npy"), { labels })).toEqual(want("image"));
    expect(() => classifyImage(model, png, { topK: 0 })).toThrow(/topK should be a positive integer, got 0/);
  });

  it("the CLI: labels of a PNG and a JPEG, most likely first; --json; --top-k", async () => {
    const out = compiledDir("vit-cls");
    const r = await cli("classify", out, "--image", join(fixtureDir("vit-cls"), "image.png"), "--image", join(fixtureDir("vit-cls"), "image.jpg"), "--json", "--threads", "1");
    expect(r.code, r.err).toBe(0);
    const [png, jpg] = r.out.trim().split("\n").map((l) => JSON.parse(l) as { label: string; score: number }[]);
    expect(png.map((x) => x.label)).toEqual(want("image").map((x) => x.label));
    png.forEach((x, j) => expect(Math.abs(x.score - want("image")[j].score)).toBeLessThan(1e-5));
    // jpeg-js's decoding is within a few levels of libjpeg's: scores within 0.01 of the reference's
    const ref = want("jpeg");
    for (const x of jpg) expect(Math.abs(x.score - ref.find((y) => y.label === x.label)!.score)).toBeLessThan(0.01);
    const plain = await cli("classify", out, "--image", join(fixtureDir("vit-cls"), "image.png"), "--top-k", "2");
    expect(plain.out).toBe(want("image").slice(0, 2).map((x) => `${x.label} ${x.score.toFixed(4)}`).join(", ") + "\n");
  });

  it("run --image writes a bare ViTModel's last hidden state as .npy", async () => {
    const out = join(tmp, "hidden.npy");
    const r = await cli("run", compiledDir("vit"), "--image", join(fixtureDir("vit"), "image.png"), "--out", out);
    expect(r.code, r.err).toBe(0);
    const { data, shape } = decodeNpy(readFileSync(out));
    expect(shape).toEqual([17, 24]);
    expect(relError(data, npy("vit", "image.npy"))).toBeLessThan(TOL);
    await expectOneLine(["run", compiledDir("vit"), "--out", out, "--force"], /^error\[WF604\]: give --input-ids IDS or --image FILE$/m);
    await expectOneLine(["run", compiledDir("vit"), "--image", join(fixtureDir("vit"), "image.png"), "--input-ids", "1", "--out", out, "--force"], /^error\[WF604\]: --image and --input-ids cannot be given together$/m);
  });

  it("what is not an image, an image classifier or a preprocessed artifact: one line", async () => {
    const out = compiledDir("vit-cls");
    const text = join(tmp, "not-an-image.png");
    writeFileSync(text, "hello");
    await expectOneLine(["classify", out, "--image", text], /^error\[WF601\]: --image .*not-an-image\.png: not a PNG or JPEG file$/m);
    const broken = join(tmp, "broken.png");
    writeFileSync(broken, readFileSync(join(fixtureDir("vit-cls"), "image.png")).subarray(0, 60));
    await expectOneLine(["classify", out, "--image", broken], /^error\[WF601\]: --image .*broken\.png: cannot be decoded as PNG/m);
    await expectOneLine(["classify", out, "--image", join(tmp, "absent.png")], /^error\[WF605\]: --image .*absent\.png: no such file or folder$/m);
    await expectOneLine(["classify", out, "--image", text, "--text", "hi"], /^error\[WF604\]: --image and --text cannot be given together$/m);
    await expectOneLine(["classify", compiledDir("vit"), "--image", join(fixtureDir("vit"), "image.png")], /^error\[WF604\]: classify --image needs an image classifier, and .* has none/m);
    // compiled without preprocessor_config.json: pixel values only
    const bare = join(tmp, "no-pre");
    cpSync(fixtureDir("vit-cls"), bare, { recursive: true });
    rmSync(join(bare, "preprocessor_config.json"));
    compileModel(example, bare, join(bare, "out"));
    await expectOneLine(["classify", join(bare, "out"), "--image", join(fixtureDir("vit-cls"), "image.png")], /^error\[WF604\]: classify --image needs the image preprocessing, and .* has none \(compile from a folder with preprocessor_config\.json\)$/m);
    const model = await loadArtifact(join(bare, "out"));
    expect(() => classifyImage(model, readImageFile(join(fixtureDir("vit-cls"), "image.png")))).toThrow(/has no image preprocessing/);
    expect(classifyImage(model, npy("vit-cls", "pixels_image.npy") as Float32Array)[0].label).toBe(want("image")[0].label);
  });
});

describe("runImage and the manifest's image input", () => {
  it("pixels of another count or not finite are WF510; run() on an image entry is WF511", async () => {
    const model = await loadArtifact(compiledDir("vit"));
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code?: string }).code} ${(e as Error).message}`;
      }
      return "no error";
    };
    expect(code(() => model.runImage("forward", new Float32Array(5)))).toBe("WF510 forward: pixels should be 972 numbers, [3, 18, 18], got 5 values");
    const nan = new Float32Array(972);
    nan[7] = NaN;
    expect(code(() => model.runImage("forward", nan))).toBe("WF510 forward: pixels[7] = NaN is not a finite number");
    expect(code(() => model.run("forward", { ids: [1] }))).toBe("WF511 forward: takes an image: run it with runImage");
  });

  it("validateManifest refuses an image input without its shape, and mean/std of another count than its channels", () => {
    const good = compiledManifest("vit-cls");
    const edit = (f: (m: Manifest) => void) => {
      const m = structuredClone(good);
      f(m);
      return () => validateManifest(m);
    };
    expect(() => validateManifest(good)).not.toThrow();
    expect(edit((m) => delete m.entries[0].inputs[0].shape)).toThrow(/entries\[0\]\.inputs\[0\]\.shape should be an array, is missing/);
    expect(edit((m) => (m.entries[0].inputs[0].shape = [3, 20, 19]))).toThrow(/inputs\[0\]\.shape should be \[channels, height, width\] of 1200 values \(its width\)/);
    expect(edit((m) => (m.image!.mean = [0.5]))).toThrow(/image\.mean should be 3 values \(the channels of the image input\)/);
    expect(edit((m) => (m.image!.resample = 0))).toThrow(/image\.resample should be a PIL filter number from 1 to 5/);
  });
});

describe("malformed ViT configs: one WF3xx line", () => {
  function failure(edit: (c: Record<string, unknown>) => void): Diagnostic | undefined {
    const config = readHfConfig(fixtureDir("vit"));
    edit(config);
    try {
      programFromSource(example, readFileSync(example, "utf8"), config, openWeights(fixtureDir("vit")));
    } catch (e) {
      if (e instanceof Diagnostic) return e;
      throw e;
    }
    return undefined;
  }
  it("a patch larger than the image, another activation, a size the tensors do not have", () => {
    expect(failure((c) => (c.patch_size = 19))?.message).toMatch(/^config\.json 'patch_size' = 19 is outside 1\.\.=18 \(1\.\.=image\)/);
    expect(failure((c) => (c.hidden_act = "relu"))?.message).toBe(`requirement 'act == "gelu"' is not met: config.json 'hidden_act' = "relu"`);
    // 22 pixels: a 5 × 5 grid needs 26 positions, the checkpoint has 17
    const d = failure((c) => (c.image_size = 22));
    expect(d?.code).toBe("WF305");
    expect(d?.message).toMatch(/'embeddings\.position_embeddings' in model\.safetensors: expected shape \[26, 24\], found \[1, 17, 24\]/);
    expect(failure((c) => (c.num_channels = 1))?.message).toMatch(/projection\.weight' in model\.safetensors: expected shape \[24, 1, 4, 4\], found \[24, 3, 4, 4\]/);
    expect(failure((c) => (c.image_size = [18, 18]))?.code).toBe("WF302");
  });
});

describe("fold-transpose: reshape-param", () => {
  function prog(text: string): Program {
    const graphs = parseGraphs(text);
    const params = new Map<string, Param>();
    const r = rng(3);
    for (const n of graphs[0].nodes)
      if (n.op === "param") {
        const shape = n.type.shape as number[];
        params.set(n.attrs.name as string, { name: n.attrs.name as string, shape, data: r.floats(shape.reduce((a, b) => a * b, 1)) });
      }
    return { model: "t", config: {}, context: 8, graphs, params };
  }
  it("a reshaped parameter becomes a parameter of that shape over the same values; a reshape of an activation stays", () => {
    const p = prog(`graph forward {
  %0 = input() {name="pixels", kind="image", dtype="f32", shape=[1,2,4,4]} : f32[1,2,4,4]
  %1 = patches(%0) {size=2} : f32[4,8]
  %2 = param() {name="w", shape=[3,2,2,2]} : f32[3,2,2,2]
  %3 = reshape(%2) {shape=[8]} : f32[3,8]
  %4 = linear(%1, %3) : f32[4,3]
  %5 = reshape(%4) {shape=[3,1]} : f32[4,3,1]
  return y=%5
}`);
    const out = foldTranspose(p);
    expect(printGraph(out.graphs[0])).toBe(`graph forward {
  %0 = input() {name="pixels", kind="image", dtype="f32", shape=[1,2,4,4]} : f32[1,2,4,4]
  %1 = patches(%0) {size=2} : f32[4,8]
  %2 = param() {name="w^[3,8]", shape=[3,8]} : f32[3,8]
  %3 = linear(%1, %2) : f32[4,3]
  %4 = reshape(%3) {shape=[3,1]} : f32[4,3,1]
  return y=%4
}`);
    expect(Array.from(out.params.get("w^[3,8]")!.data)).toEqual(Array.from(p.params.get("w")!.data));
    const pixels = rng(4).floats(32);
    expect(interpret(out, "forward", { pixels }, newSession()).y).toEqual(interpret(p, "forward", { pixels }, newSession()).y);
  });
});

it("a stored [1, 1, d] tensor binds to a declaration without its leading 1s; other shapes still must match", () => {
  const p = loadProgram(example, fixtureDir("vit"));
  expect(p.params.get("embeddings.cls_token")!.shape).toEqual([1, 24]);
  expect(p.params.get("embeddings.position_embeddings")!.shape).toEqual([17, 24]);
  expect(p.params.get("embeddings.cls_token")!.data).toHaveLength(24);
});
