// Loads, stores and a lane sum the kernel modules share (AssemblyScript).

// @ts-nocheck  (AssemblyScript, not TypeScript)

@inline export function f32at(p: usize, i: i32): f32 { return load<f32>(p + (<usize>i << 2)); }
@inline export function setf32(p: usize, i: i32, v: f32): void { store<f32>(p + (<usize>i << 2), v); }

@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}
