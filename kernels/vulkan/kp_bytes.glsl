// kp_bytes.glsl: bytes of a weight tensor read as 32-bit words. Q6_K (210 B)
// and Q8_0 (34 B) blocks are only 2-byte aligned, so 4-byte loads at even
// offsets combine two words. Expects `uint kp_w4(uint m, uint i)`: word i of
// weight matrix m (m selects between the kernel's weight bindings).
#ifndef KP_BYTES_GLSL
#define KP_BYTES_GLSL

// 4 bytes at byte offset `off` (a multiple of 2), little-endian.
uint kp_u32_at(uint m, uint off) {
  const uint w0 = kp_w4(m, off >> 2u);
  if ((off & 2u) == 0u) return w0;
  return (w0 >> 16u) | (kp_w4(m, (off >> 2u) + 1u) << 16u);
}

// 2 bytes at byte offset `off` (a multiple of 2).
uint kp_u16_at(uint m, uint off) { return (kp_w4(m, off >> 2u) >> ((off & 2u) * 8u)) & 0xFFFFu; }

// Signed byte b (0..3) of word w.
int kp_i8(uint w, uint b) { return bitfieldExtract(int(w), int(b * 8u), 8); }

// Unsigned byte b (0..3) of word w.
uint kp_u8(uint w, uint b) { return (w >> (b * 8u)) & 0xFFu; }

#endif  // KP_BYTES_GLSL
