// Images as vision models take them: decoded pixels (from a PNG or JPEG decoder, or a canvas's
// ImageData) become an image input's values as transformers' ViTImageProcessor makes them — RGB,
// resized by Pillow's resampling, bit for bit (its fixed-point convolution filters), rescaled and
// normalized in float32 as numpy does — and an image classifier's labels with scores. No
// Node-only imports: decoding image files is left to the caller.

import { type Classification, labelScores } from "./embed.js";
import { ArtifactError, show } from "./errors.js";
import type { ImagePreprocessing, Manifest, ManifestInput } from "./manifest.js";
import type { Model } from "./model.js";

/** Decoded 8-bit pixels, row by row, `channels` bytes a pixel: 1 gray, 2 gray and alpha, 3 RGB, 4 RGBA (a canvas's ImageData). */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  /** Bytes a pixel (default: data.length / (width · height)). */
  channels?: number;
}

/** Pillow's convolution filters (Resample.c), by the number PIL.Image.Resampling gives each: f(x) and its support. */
const FILTERS: Record<number, { f: (x: number) => number; support: number }> = {
  // Lanczos: a sinc windowed by a sinc three times wider
  1: { f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0), support: 3 },
  2: { f: (x) => ((x = Math.abs(x)) < 1 ? 1 - x : 0), support: 1 },
  // bicubic with a = -0.5
  3: {
    f: (x) => {
      x = Math.abs(x);
      if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * -0.5;
      return 0;
    },
    support: 2,
  },
  4: { f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0), support: 0.5 },
  // Hamming: its constants are C floats (0.54f, 0.46f) promoted to double
  5: {
    f: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x));
    },
    support: 1,
  },
};
function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

/** Fixed-point bits of Pillow's 8-bit coefficients. */
const PRECISION_BITS = 32 - 8 - 2;

/**
 * Each output position's first input position, tap count and fixed-point weights along one axis
 * (Pillow's precompute_coeffs and normalize_coeffs_8bpc, with their rounding).
 */
function coefficients(inSize: number, outSize: number, filter: (typeof FILTERS)[number]) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const bounds: [first: number, taps: number][] = [];
  const weights: Int32Array[] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(Math.max(xmax, 0));
    let ww = 0;
    for (let x = 0; x < xmax; x++) ww += k[x] = filter.f((x + xmin - center + 0.5) * ss);
    weights.push(Int32Array.from(k, (w) => {
      const v = ww !== 0 ? w / ww : w;
      return Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }));
    bounds.push([xmin, xmax]);
  }
  return { bounds, weights };
}

/** Pillow's clip8: the fixed-point sum rounded (it starts at one half) and clamped to a byte. */
const clip8 = (ss: number) => Math.min(255, Math.max(0, ss >> PRECISION_BITS));

/**
 * An RGB image [height, width, 3] resized to outWidth × outHeight as Pillow's Image.resize does
 * on mode "RGB" with filter `resample` (1 Lanczos, 2 bilinear, 3 bicubic, 4 box, 5 Hamming):
 * a horizontal pass over the rows the vertical pass reads, rounded to bytes, then the vertical
 * pass. The same bytes as Pillow's.
 */
export function resizeRgb(rgb: Uint8Array, width: number, height: number, outWidth: number, outHeight: number, resample = 2): Uint8Array {
  const filter = FILTERS[resample];
  if (!filter) throw new ArtifactError("WF510", `resizeRgb: resample should be a PIL filter number from 1 to 5, got ${show(resample)}`);
  if (rgb.length !== width * height * 3) throw new ArtifactError("WF510", `resizeRgb: ${rgb.length} bytes are not ${width} × ${height} RGB pixels`);
  if (width === outWidth && height === outHeight) return rgb.slice();
  const vert = coefficients(height, outHeight, filter);
  // rows first..last of the input are all the vertical pass reads
  const first = vert.bounds[0][0], last = vert.bounds[outHeight - 1][0] + vert.bounds[outHeight - 1][1];
  let src = rgb, rows = height, offset = 0;
  if (width !== outWidth) {
    const hor = coefficients(width, outWidth, filter);
    rows = last - first;
    const tmp = new Uint8Array(rows * outWidth * 3);
    for (let y = 0; y < rows; y++)
      for (let xx = 0; xx < outWidth; xx++) {
        const [xmin, taps] = hor.bounds[xx], k = hor.weights[xx];
        for (let c = 0; c < 3; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < taps; x++) ss += rgb[((y + first) * width + xmin + x) * 3 + c] * k[x];
          tmp[(y * outWidth + xx) * 3 + c] = clip8(ss);
        }
      }
    src = tmp;
    offset = first;
  }
  if (height === outHeight) return src;
  const out = new Uint8Array(outHeight * outWidth * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const [ymin, taps] = vert.bounds[yy], k = vert.weights[yy];
    for (let xx = 0; xx < outWidth; xx++)
      for (let c = 0; c < 3; c++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < taps; y++) ss += src[((ymin - offset + y) * outWidth + xx) * 3 + c] * k[y];
        out[(yy * outWidth + xx) * 3 + c] = clip8(ss);
      }
  }
  return out;
}

/** The image's pixels in RGB, as PIL's convert("RGB") gives them: gray repeated in each channel, alpha dropped. */
export function toRgb(image: RawImage): Uint8Array {
  const bad = (why: string) => new ArtifactError("WF510", `image: ${why}`);
  if (typeof image !== "object" || image === null || !(image.data instanceof Uint8Array || image.data instanceof Uint8ClampedArray))
    throw bad(`should be { data: Uint8Array, width, height, channels? }, got ${show(image)}`);
  const { data, width, height } = image;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) throw bad(`width and height should be positive integers, got ${show(width)} × ${show(height)}`);
  const channels = image.channels ?? data.length / (width * height);
  if (![1, 2, 3, 4].includes(channels) || data.length !== width * height * channels)
    throw bad(`${data.length} bytes are not ${width} × ${height} pixels of 1 to 4 channels${image.channels !== undefined ? ` (channels ${show(image.channels)})` : ""}`);
  if (channels === 3) return new Uint8Array(data);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++)
    for (let c = 0; c < 3; c++) out[i * 3 + c] = data[i * channels + (channels < 3 ? 0 : c)];
  return out;
}

/**
 * The pixel values of image input `input` for an image, per `pre` (the manifest's image
 * preprocessing): RGB, resized to the input's height × width, rescaled, normalized, channel by
 * channel — transformers' ViTImageProcessor with do_convert_rgb. Float32Array [3, height, width].
 */
export function imagePixels(image: RawImage, input: ManifestInput, pre: ImagePreprocessing): Float32Array {
  const [C, H, W] = input.shape ?? [];
  if (C !== 3) throw new ArtifactError("WF511", `image input ${input.name} takes ${C} channels; images are converted to 3 (RGB): pass its pixel values instead`);
  let rgb = toRgb(image);
  if (image.width !== W || image.height !== H) {
    if (!pre.resize) throw new ArtifactError("WF510", `image: ${image.width} × ${image.height} pixels, and the model takes ${W} × ${H} without resizing (preprocessor_config.json do_resize false)`);
    rgb = resizeRgb(rgb, image.width, image.height, W, H, pre.resample);
  }
  const out = new Float32Array(C * H * W);
  const mean = pre.mean.map(Math.fround), std = pre.std.map(Math.fround);
  for (let c = 0; c < C; c++)
    for (let i = 0; i < H * W; i++) {
      // float64 times the factor, then float32 (transformers' rescale); float32 arithmetic after
      let v = pre.rescale ? Math.fround(rgb[i * 3 + c] * pre.rescale_factor) : rgb[i * 3 + c];
      if (pre.normalize) v = Math.fround(Math.fround(v - mean[c]) / std[c]);
      out[c * H * W + i] = v;
    }
  return out;
}

/** The entry of an image classifier: its image input and its logits output (WF511 where the artifact has none). */
function imageClassifier(man: Manifest) {
  for (const e of man.entries) {
    const input = e.inputs.find((i) => i.kind === "image");
    const output = e.outputs.find((o) => o.name === "logits" && o.rows === "1");
    if (input && output && man.classifier) return { entry: e, input, output, classifier: man.classifier };
  }
  throw new ArtifactError("WF511", `classifyImage: this artifact (${man.model}) has no image-classification head`);
}

/**
 * An image classifier's labels for one image, most likely first, scored as transformers'
 * image-classification pipeline does (softmax over the labels; sigmoid for multi-label ones).
 * `image`: decoded pixels, preprocessed as the manifest says (an artifact compiled without a
 * preprocessor_config.json takes pixel values only), or the pixel values themselves (a
 * Float32Array [channels, height, width]). `topK` keeps that many (default: all).
 */
export function classifyImage(model: Model, image: RawImage | Float32Array, opts: { topK?: number } = {}): Classification[] {
  const man = model.manifest;
  const { entry, input, output, classifier } = imageClassifier(man);
  const { topK = classifier.labels.length } = opts;
  if (!Number.isSafeInteger(topK) || topK < 1) throw new ArtifactError("WF510", `classifyImage: topK should be a positive integer, got ${show(topK)}`);
  let pixels: Float32Array;
  if (image instanceof Float32Array) pixels = image;
  else if (!man.image) throw new ArtifactError("WF511", `classifyImage: this artifact has no image preprocessing (compile from a folder with preprocessor_config.json), so it takes pixel values [${input.shape?.join(", ")}] only`);
  else pixels = imagePixels(image, input, man.image);
  const logits = model.runImage(entry.name, pixels)[output.name];
  return labelScores(logits, classifier).slice(0, topK);
}
