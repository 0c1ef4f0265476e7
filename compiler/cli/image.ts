// Image files for `classify --image`: PNG (pngjs) and JPEG (jpeg-js) decoded to RGBA pixels, which
// the runtime turns into a model's pixel values (runtime/image.ts). The runtime itself decodes
// nothing: a page hands it a canvas's pixels.

import { readFileSync, statSync } from "node:fs";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";
import { type RawImage, classifyImage, imagePixels } from "@wasmformer/runtime/image";
import type { Manifest } from "@wasmformer/runtime/manifest";
import { readManifest } from "@wasmformer/runtime/node";
import { InputError } from "../diagnostics.js";
import { fsReason, isFsError } from "./errors.js";
import { type Io, optionError, usageError } from "./options.js";
import { threadsFor, withModel } from "./shared.js";

/** The largest image file read, and the most pixels decoded (jpeg-js's own limit is in megapixels). */
const MAX_FILE_BYTES = 256 << 20;
const MAX_MEGAPIXELS = 100;

/** `file`'s pixels, RGBA; a file that is not a PNG or JPEG, or that does not decode, is WF601 naming it. */
export function readImageFile(file: string): RawImage {
  let bytes: Buffer;
  try {
    if (statSync(file).size > MAX_FILE_BYTES) throw optionError(`--image ${file}: larger than the ${MAX_FILE_BYTES >> 20} MiB read of an image`);
    bytes = readFileSync(file);
  } catch (e) {
    throw isFsError(e) ? new InputError(`--image ${file}: ${fsReason(e)}`, undefined, { code: "WF605" }) : e;
  }
  const png = bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const jpg = bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!png && !jpg) throw optionError(`--image ${file}: not a PNG or JPEG file`);
  try {
    if (png) {
      const img = PNG.sync.read(bytes);
      if (img.width * img.height > MAX_MEGAPIXELS * 1e6) throw new Error(`${img.width} × ${img.height} pixels is more than ${MAX_MEGAPIXELS} megapixels`);
      // 8-bit RGBA whatever the file's color type (16-bit samples scaled down)
      return { data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength), width: img.width, height: img.height, channels: 4 };
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_MEGAPIXELS });
    return { data: img.data, width: img.width, height: img.height, channels: 4 };
  } catch (e) {
    throw optionError(`--image ${file}: cannot be decoded as ${png ? "PNG" : "JPEG"} (${e instanceof Error ? e.message.replace(/\s+/g, " ").trim() : String(e)})`);
  }
}

/** The pixel values of image `file` for the image input of artifact `man` (run --image): a usage error where it has none, or no preprocessing. */
export function readImagePixels(file: string, man: Manifest): Float32Array {
  const input = man.entries[0].inputs.find((i) => i.kind === "image");
  if (!input) throw usageError(`--image needs an image model, and the artifact's entry ${man.entries[0].name} takes ${man.entries[0].inputs.map((i) => i.kind).join(", ")}`);
  if (!man.image) throw usageError("--image needs the image preprocessing, and the artifact has none (compile from a folder with preprocessor_config.json)");
  return imagePixels(readImageFile(file), input, man.image);
}

/** classify --image: each image's labels from an image classifier, most likely first. */
export async function classifyImagesRun(artifact: string, a: { image: string[]; "top-k"?: number; json: boolean; threads?: number }, io: Io) {
  const man = readManifest(artifact);
  const takesImages = man.entries.some((e) => e.inputs.some((i) => i.kind === "image") && e.outputs.some((o) => o.name === "logits"));
  if (!takesImages || !man.classifier) throw usageError(`classify --image needs an image classifier, and ${artifact} has none (compile a ViTForImageClassification checkpoint with examples/vit.wf)`);
  if (!man.image) throw usageError(`classify --image needs the image preprocessing, and ${artifact} has none (compile from a folder with preprocessor_config.json)`);
  // every file is read and decoded before the model is loaded
  const images = a.image.map(readImageFile);
  await withModel(artifact, threadsFor(a.threads, man), (model) => {
    for (const image of images) {
      const r = classifyImage(model, image, { topK: a["top-k"] });
      io.stdout.write(a.json ? JSON.stringify(r) + "\n" : r.map((x) => `${x.label} ${x.score.toFixed(4)}`).join(", ") + "\n");
    }
  });
}
