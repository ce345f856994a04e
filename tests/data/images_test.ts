import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { decodeImage, rgbToChw } from "../../lib/data/images.ts";
import { pgm, ppm } from "./writers.ts";

Deno.test("images: PPM and PGM decode exactly; grey widens to three equal channels; CHW in [0, 1]", () => {
  const rgb = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i * 14);
  const img = decodeImage(ppm(3, 2, rgb), "a.ppm");
  assert.equal(img.width, 3);
  assert.equal(img.height, 2);
  assert.deepEqual(Array.from(img.rgb), Array.from(rgb));
  const out = new Float64Array(1 + 18);
  rgbToChw(img, out, 1);
  // channel c of pixel p sits at c * 6 + p
  for (let p = 0; p < 6; p++) for (let c = 0; c < 3; c++) assert.equal(out[1 + c * 6 + p], rgb[3 * p + c] / 255);
  const grey = decodeImage(pgm(2, 1, Uint8Array.of(7, 250)), "g.pgm");
  assert.deepEqual(Array.from(grey.rgb), [7, 7, 7, 250, 250, 250]);
});

Deno.test("images: JPEG through jpeg-js, near the encoded colours; corrupt and unsupported files are one line", () => {
  // flat 8x8 blocks survive JPEG at quality 100 within a level or two
  const w = 16, h = 8, colours = [[200, 30, 90], [10, 240, 130]];
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) rgba.set([...colours[x < 8 ? 0 : 1], 255], 4 * (y * w + x));
  }
  const file = jpeg.encode({ width: w, height: h, data: rgba }, 100).data;
  const img = decodeImage(file, "a.jpg");
  assert.equal(img.width, w);
  assert.equal(img.height, h);
  for (let p = 0; p < w * h; p++) {
    const want = colours[p % w < 8 ? 0 : 1];
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(img.rgb[3 * p + c] - want[c]) <= 3, `pixel ${p} channel ${c}`);
  }
  assert.throws(() => decodeImage(file.subarray(0, 200), "cut.jpg"), (e: Error) => {
    assert.match(e.message, /^cut\.jpg: corrupt JPEG \(.+\)$/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  const png = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0);
  assert.throws(() => decodeImage(png, "x.png"), {
    message: "x.png: unsupported image format (PNG); supported: JPEG, binary PPM (P6) and PGM (P5)",
  });
  assert.throws(() => decodeImage(ppm(4, 4, new Uint8Array(40)), "short.ppm"), {
    message: "short.ppm: truncated: 40 pixel bytes, 4x4 needs 48",
  });
  assert.throws(() => decodeImage(new TextEncoder().encode("P6\n4 4\n65535\n"), "deep.ppm"), {
    message: "deep.ppm: PPM/PGM with maxval 65535; only 8-bit (255) is supported",
  });
});
