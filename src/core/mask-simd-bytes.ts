// Generated from src/core/mask-simd.wat by scripts/build-wasm.mjs (run by npm run build): do not edit.
// test/scripts/build-wasm.test.ts checks that this file is what the script makes of the .wat.

/** The WebAssembly module of mask-simd.wat (148 bytes), base64: a string, so no caller can change it. */
export const MASK_SIMD_WASM_BASE64 =
  'AGFzbQEAAAABBgFgAn9/AAMCAQAFBAEBAgIHEQIGbWVtb3J5AgAEbWFzawAACmUBYwIBfwF7IAH9' +
  'ESEDAkADQCACIABPDQEgAiAC/QAEACAD/VH9CwQAIAIgAv0ABBAgA/1R/QsEECACIAL9AAQgIAP9' +
  'Uf0LBCAgAiAC/QAEMCAD/VH9CwQwIAJBwABqIQIMAAsLCw==';
