/** The in-memory form of an image classification data set, as the readers return it. */
export interface ImageSet {
  /** count * channels * height * width bytes: one image after another, each channel-major (CHW). */
  images: Uint8Array;
  /** One class index per image, 0 <= label < classes. */
  labels: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  classes: number;
}

export type Split = 'train' | 'test';
