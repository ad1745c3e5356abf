;; XOR masking of RFC 6455 section 5.3 with WebAssembly SIMD, over a scratch
;; block in this module's own memory (WebAssembly code can reach no other
;; memory). src/core/mask.ts copies up to one block of payload in at address 0,
;; calls $mask, and copies the same number of bytes back out.
;;
;; scripts/build-wasm.mjs compiles this file into src/core/mask-simd-bytes.ts;
;; test/scripts/build-wasm.test.ts checks that the two never drift apart, and
;; test/core/mask.test.ts checks the bytes this code makes against the
;; section 5.3 formula.
(module
  ;; Two fixed pages (128 KiB): the block of SIMD_BLOCK = 65536 bytes (mask.ts)
  ;; plus the up to 63 bytes that the loop below runs past a length that is not
  ;; a multiple of 64. Minimum and maximum are equal, so the memory never grows
  ;; and mask.ts's views of its ArrayBuffer are never detached. An access past
  ;; the end traps, so no length can make this code write outside its memory.
  (memory (export "memory") 2 2)

  ;; $mask(length, key): XOR the bytes [0, length rounded up to 64) of the
  ;; memory with `key` repeated. `key` is the 4-byte masking key as packed by
  ;; packMask (byte k is (key >>> 8k) & 255), already rotated by mask.ts so
  ;; that its byte 0 is the key byte of the first payload byte of the block
  ;; (the mask phase). The memory is little-endian, so the vector made by
  ;; i32x4.splat holds the key's bytes in order, four times over.
  ;;
  ;; No scalar tail: the bytes between `length` and the next multiple of 64
  ;; are scratch that mask.ts never copies out.
  (func $mask (export "mask") (param $length i32) (param $key i32)
    (local $p i32)
    (local $k v128)
    (local.set $k (i32x4.splat (local.get $key)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $length)))
        ;; Four 16-byte vectors a turn: fewer loop checks per byte.
        (v128.store offset=0
          (local.get $p)
          (v128.xor (v128.load offset=0 (local.get $p)) (local.get $k)))
        (v128.store offset=16
          (local.get $p)
          (v128.xor (v128.load offset=16 (local.get $p)) (local.get $k)))
        (v128.store offset=32
          (local.get $p)
          (v128.xor (v128.load offset=32 (local.get $p)) (local.get $k)))
        (v128.store offset=48
          (local.get $p)
          (v128.xor (v128.load offset=48 (local.get $p)) (local.get $k)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $next))))
)
