// Where a compile reads checkpoint tensors from.

export interface TensorInfo {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** File the tensor lives in, for error messages. */
  readonly file: string;
}

export interface WeightSource {
  readonly description: string;
  names(): string[];
  info(name: string): TensorInfo | undefined;
  /** The tensor converted to float32. */
  read(name: string): Float32Array;
}
