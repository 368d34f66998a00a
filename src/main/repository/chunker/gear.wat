;; The gear-hash scan of chunker.ts's findBoundary, in WebAssembly: the same cut for the same bytes,
;; ~2x the speed of the JavaScript loop once V8 has optimised it and ~4x before (a chunk worker is
;; new for every backup, so most of its scanning used to run unoptimised). Compiled by
;; scripts/gear-wasm.mjs into gear-wasm.ts; a test checks the two agree.
;;
;; Memory: the gear table (256 x i32) at 0, the bytes to scan from 1024 (the caller copies them in
;; and grows the memory as needed).
(module
  (memory (export "mem") 1)
  ;; Scans from $i (absolute): warms the 32-byte window up on the bytes before $i, then looks for
  ;; h & $maskS == 0 until $stopS and for h & $maskL == 0 until $stopL. Returns the position after
  ;; the boundary byte, or -1 when there is none before $stopL.
  (func (export "scan") (param $i i32) (param $stopS i32) (param $stopL i32) (param $maskS i32) (param $maskL i32) (result i32)
    (local $h i32)
    (local $w i32)
    (local.set $w (i32.sub (local.get $i) (i32.const 32)))
    (block $warmed
      (loop $warm
        (br_if $warmed (i32.ge_u (local.get $w) (local.get $i)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $w)) (i32.const 2)))))
        (local.set $w (i32.add (local.get $w) (i32.const 1)))
        (br $warm)))
    (block $small
      (loop $s
        (br_if $small (i32.ge_u (local.get $i) (local.get $stopS)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskS))) (then (return (local.get $i))))
        (br $s)))
    (block $large
      (loop $l
        (br_if $large (i32.ge_u (local.get $i) (local.get $stopL)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1)) (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $h) (local.get $maskL))) (then (return (local.get $i))))
        (br $l)))
    (i32.const -1))
)
