/**
 * Decoding single image files to 8-bit RGB: JPEG (through the pure-JS
 * jpeg-js decoder) and binary PPM/PGM (P6/P5, which tests and converters can
 * write exactly). Grey images are widened to three equal channels so that a
 * folder of mixed images has one shape, as Tiny ImageNet's does.
 */
import jpeg from "jpeg-js";
import { DatasetError } from "./dataset.ts";

export const SUPPORTED_IMAGE_FORMATS = "JPEG, binary PPM (P6) and PGM (P5)";

export interface RgbImage {
  width: number;
  height: number;
  /** width * height * 3 bytes, row-major, channels interleaved (HWC). */
  rgb: Uint8Array;
}

/** Decodes an image by its content (the extension is not trusted); `file` names it in errors. */
export function decodeImage(bytes: Uint8Array, file: string): RgbImage {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes, file);
  if (bytes.length >= 2 && bytes[0] === 0x50 /* P */ && (bytes[1] === 0x35 || bytes[1] === 0x36)) {
    return decodeNetpbm(bytes, file);
  }
  const what = bytes.length >= 8 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 ? "PNG" : "unknown";
  throw new DatasetError(`${file}: unsupported image format (${what}); supported: ${SUPPORTED_IMAGE_FORMATS}`);
}

function decodeJpeg(bytes: Uint8Array, file: string): RgbImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    // Not tolerant: a truncated or damaged file must fail, not decode to grey blocks.
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, tolerantDecoding: false });
  } catch (e) {
    throw new DatasetError(`${file}: corrupt JPEG (${String((e as Error).message ?? e).split("\n")[0]})`);
  }
  const { width, height, data } = decoded;
  if (!(width > 0 && height > 0) || data.length !== width * height * 4) {
    throw new DatasetError(`${file}: corrupt JPEG (decoded ${data.length} bytes for ${width}x${height})`);
  }
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    rgb[3 * p] = data[4 * p];
    rgb[3 * p + 1] = data[4 * p + 1];
    rgb[3 * p + 2] = data[4 * p + 2];
  }
  return { width, height, rgb };
}

/** Binary PGM/PPM: "P5|P6" then width, height and maxval as ASCII (with # comments), one whitespace byte, pixels. */
function decodeNetpbm(bytes: Uint8Array, file: string): RgbImage {
  const fail = (why: string): never => {
    throw new DatasetError(`${file}: ${why}`);
  };
  const channels = bytes[1] === 0x36 ? 3 : 1;
  let at = 2;
  const isSpace = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
  const field = (): number => {
    for (;;) {
      while (at < bytes.length && isSpace(bytes[at])) at++;
      if (bytes[at] !== 0x23 /* # */) break;
      while (at < bytes.length && bytes[at] !== 0x0a) at++;
    }
    let text = "";
    while (at < bytes.length && bytes[at] >= 0x30 && bytes[at] <= 0x39) text += String.fromCharCode(bytes[at++]);
    if (!text) fail("truncated or corrupt PPM/PGM header");
    return Number(text);
  };
  const width = field(), height = field(), maxval = field();
  if (width < 1 || height < 1) fail(`PPM/PGM of size ${width}x${height}`);
  if (maxval !== 255) fail(`PPM/PGM with maxval ${maxval}; only 8-bit (255) is supported`);
  if (!isSpace(bytes[at] ?? -1)) fail("corrupt PPM/PGM header");
  at++;
  const want = width * height * channels;
  if (bytes.length - at < want) fail(`truncated: ${bytes.length - at} pixel bytes, ${width}x${height} needs ${want}`);
  const pixels = bytes.subarray(at, at + want);
  if (channels === 3) return { width, height, rgb: pixels.slice() };
  const rgb = new Uint8Array(width * height * 3);
  pixels.forEach((v, p) => rgb.fill(v, 3 * p, 3 * p + 3));
  return { width, height, rgb };
}

/** HWC bytes to CHW values in [0, 1], written into `out` at `at`. */
export function rgbToChw(img: RgbImage, out: Float64Array, at: number): void {
  const plane = img.width * img.height;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[at + c * plane + p] = img.rgb[3 * p + c] / 255;
  }
}
