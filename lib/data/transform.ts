/**
 * What training needs around a dataset: one-hot labels, selecting samples,
 * per-channel statistics and normalisation. All plaintext, at the data owner
 * before sharing or in the float64 twin.
 */
import { type Dataset, DatasetError, sampleSize } from "./dataset.ts";

/** labels [n] to one-hot rows [n, classes] (1 at the label, 0 elsewhere). */
export function oneHot(labels: ArrayLike<number>, classes: number): Float64Array {
  const out = new Float64Array(labels.length * classes);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classes) {
      throw new DatasetError(`label ${l} at index ${i} is outside 0..${classes - 1}`);
    }
    out[i * classes + l] = 1;
  }
  return out;
}

/** The samples at `indices`, in that order, as a new dataset (e.g. one batch). */
export function subset(d: Dataset, indices: ArrayLike<number>): Dataset {
  const per = sampleSize(d);
  const n = d.labels.length;
  const images = new Float64Array(indices.length * per), labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= n) throw new RangeError(`index ${k} outside 0..${n - 1}`);
    images.set(d.images.subarray(k * per, (k + 1) * per), i * per);
    labels[i] = d.labels[k];
  }
  return { ...d, images, labels };
}

export interface ChannelStats {
  mean: number[];
  std: number[];
}

/** Mean and (population) standard deviation of each channel over all samples and pixels. */
export function channelStats(d: Dataset): ChannelStats {
  const [c, h, w] = d.shape;
  const plane = h * w, n = d.labels.length;
  const mean: number[] = [], std: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    let sum = 0, sq = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * c + ch) * plane;
      for (let p = 0; p < plane; p++) {
        const v = d.images[base + p];
        sum += v;
        sq += v * v;
      }
    }
    const count = n * plane;
    const m = count ? sum / count : 0;
    mean.push(m);
    std.push(Math.sqrt(Math.max(0, count ? sq / count - m * m : 0)));
  }
  return { mean, std };
}

/**
 * (x - mean[c]) / std[c] per channel, as a new dataset. Pass the training
 * split's statistics when normalising the test split; by default the
 * dataset's own. A channel with std 0 is only centred.
 */
export function normalize(d: Dataset, stats: ChannelStats = channelStats(d)): Dataset {
  const [c, h, w] = d.shape;
  if (stats.mean.length !== c || stats.std.length !== c) {
    throw new DatasetError(`normalisation for ${stats.mean.length} channels applied to ${c} channels`);
  }
  const plane = h * w;
  const images = new Float64Array(d.images.length);
  for (let i = 0; i < d.images.length; i++) {
    const ch = Math.floor(i / plane) % c;
    const s = stats.std[ch] > 0 ? stats.std[ch] : 1;
    images[i] = (d.images[i] - stats.mean[ch]) / s;
  }
  return { ...d, images };
}

/**
 * Every image resized to h x w by bilinear interpolation with half-pixel
 * centres (PyTorch's `interpolate(mode="bilinear", align_corners=False)`), and
 * its channels repeated to `channels` when it has one (grey digits for a
 * network that takes colour, e.g. ResNet-18's CIFAR stem on 32x32 digits).
 */
export function resize(d: Dataset, h: number, w: number, channels = d.shape[0]): Dataset {
  const [c, ih, iw] = d.shape;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new DatasetError(`resize to ${h}x${w}: the sizes must be positive integers`);
  }
  if (channels !== c && c !== 1) throw new DatasetError(`only a 1-channel dataset repeats to ${channels} channels`);
  const n = d.labels.length, images = new Float64Array(n * channels * h * w);
  // Source coordinate of output pixel o: (o + 0.5) * in / out - 0.5, clamped at the edges.
  const taps = (out: number, len: number) =>
    Array.from({ length: out }, (_, o) => {
      const s = Math.max(0, (o + 0.5) * len / out - 0.5), i0 = Math.min(Math.floor(s), len - 1);
      return { i0, i1: Math.min(i0 + 1, len - 1), t: s - i0 };
    });
  const ty = taps(h, ih), tx = taps(w, iw);
  for (let s = 0; s < n; s++) {
    for (let ch = 0; ch < channels; ch++) {
      const src = (s * c + (c === 1 ? 0 : ch)) * ih * iw, dst = (s * channels + ch) * h * w;
      for (let y = 0; y < h; y++) {
        const { i0: y0, i1: y1, t: a } = ty[y];
        for (let x = 0; x < w; x++) {
          const { i0: x0, i1: x1, t: b } = tx[x];
          const p = (yy: number, xx: number) => d.images[src + yy * iw + xx];
          images[dst + y * w + x] = (1 - a) * ((1 - b) * p(y0, x0) + b * p(y0, x1)) +
            a * ((1 - b) * p(y1, x0) + b * p(y1, x1));
        }
      }
    }
  }
  return { ...d, images, shape: [channels, h, w] };
}
