;; SIMD row kernels of the fused MF trainer (f32x4). Rows are float32, 16-byte aligned,
;; their length `n` a multiple of 4 (tables are padded). All pointers are byte offsets into
;; the shared memory. Each function is a pure loop over one row: the order of every sum is
;; fixed (lane-wise partial sums, then lanes 0+1+2+3), so results never depend on the
;; thread that runs them.
;;
;; Rebuild the embedded bytes with `pnpm --filter @advrec/trainer build:wasm` (wabt).
(module
  (import "env" "memory" (memory 1 65536 shared))

  (func $hsum (param $v v128) (result f64)
    (f64.add
      (f64.add
        (f64.promote_f32 (f32x4.extract_lane 0 (local.get $v)))
        (f64.promote_f32 (f32x4.extract_lane 1 (local.get $v))))
      (f64.add
        (f64.promote_f32 (f32x4.extract_lane 2 (local.get $v)))
        (f64.promote_f32 (f32x4.extract_lane 3 (local.get $v))))))

  ;; sum_f p[f] * (a[f] - b[f])
  (func (export "margin") (param $p i32) (param $a i32) (param $b i32) (param $n i32) (result f64)
    (local $s v128) (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (f32x4.add (local.get $s)
          (f32x4.mul (v128.load (local.get $p))
            (f32x4.sub (v128.load (local.get $a)) (v128.load (local.get $b))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (br $l)))
    (call $hsum (local.get $s)))

  ;; sum_f (p[f] + dp[f]) * ((a[f] + da[f]) - (b[f] + db[f]))
  (func (export "marginPerturbed") (param $p i32) (param $dp i32) (param $a i32) (param $da i32)
      (param $b i32) (param $db i32) (param $n i32) (result f64)
    (local $s v128) (local $end i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $s (f32x4.add (local.get $s)
          (f32x4.mul
            (f32x4.add (v128.load (local.get $p)) (v128.load (local.get $dp)))
            (f32x4.sub
              (f32x4.add (v128.load (local.get $a)) (v128.load (local.get $da)))
              (f32x4.add (v128.load (local.get $b)) (v128.load (local.get $db)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (local.set $dp (i32.add (local.get $dp) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $da (i32.add (local.get $da) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (local.set $db (i32.add (local.get $db) (i32.const 16)))
        (br $l)))
    (call $hsum (local.get $s)))

  ;; g += c * (a - b)
  (func (export "axpyDiff") (param $g i32) (param $c f32) (param $a i32) (param $b i32) (param $n i32)
    (local $c4 v128) (local $end i32)
    (local.set $c4 (f32x4.splat (local.get $c)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $g) (f32x4.add (v128.load (local.get $g))
          (f32x4.mul (local.get $c4) (f32x4.sub (v128.load (local.get $a)) (v128.load (local.get $b))))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (br $l))))

  ;; g += c * ((a + da) - (b + db))
  (func (export "axpyDiffPerturbed") (param $g i32) (param $c f32) (param $a i32) (param $da i32)
      (param $b i32) (param $db i32) (param $n i32)
    (local $c4 v128) (local $end i32)
    (local.set $c4 (f32x4.splat (local.get $c)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $g) (f32x4.add (v128.load (local.get $g))
          (f32x4.mul (local.get $c4)
            (f32x4.sub
              (f32x4.add (v128.load (local.get $a)) (v128.load (local.get $da)))
              (f32x4.add (v128.load (local.get $b)) (v128.load (local.get $db)))))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $da (i32.add (local.get $da) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (local.set $db (i32.add (local.get $db) (i32.const 16)))
        (br $l))))

  ;; g += c * a
  (func (export "axpy") (param $g i32) (param $c f32) (param $a i32) (param $n i32)
    (local $c4 v128) (local $end i32)
    (local.set $c4 (f32x4.splat (local.get $c)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $g) (f32x4.add (v128.load (local.get $g))
          (f32x4.mul (local.get $c4) (v128.load (local.get $a)))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (br $l))))

  ;; g += c * (a + da)
  (func (export "axpyPerturbed") (param $g i32) (param $c f32) (param $a i32) (param $da i32) (param $n i32)
    (local $c4 v128) (local $end i32)
    (local.set $c4 (f32x4.splat (local.get $c)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $g) (f32x4.add (v128.load (local.get $g))
          (f32x4.mul (local.get $c4) (f32x4.add (v128.load (local.get $a)) (v128.load (local.get $da))))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $da (i32.add (local.get $da) (i32.const 16)))
        (br $l))))

  ;; g = src + c * a   (APR: gradient = Gamma + 2 l2 n theta)
  (func (export "initScaled") (param $g i32) (param $src i32) (param $c f32) (param $a i32) (param $n i32)
    (local $c4 v128) (local $end i32)
    (local.set $c4 (f32x4.splat (local.get $c)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $g) (f32x4.add (v128.load (local.get $src))
          (f32x4.mul (local.get $c4) (v128.load (local.get $a)))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (br $l))))

  ;; g = 0
  (func (export "zero") (param $g i32) (param $n i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $g) (v128.const i32x4 0 0 0 0))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (br $l))))

  ;; Adagrad (TensorFlow): acc += g^2; v -= lr * g / sqrt(acc)
  (func (export "adagrad") (param $v i32) (param $acc i32) (param $g i32) (param $n i32) (param $lr f32)
    (local $end i32) (local $lr4 v128) (local $g4 v128) (local $a4 v128)
    (local.set $lr4 (f32x4.splat (local.get $lr)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $g4 (v128.load (local.get $g)))
        (local.set $a4 (f32x4.add (v128.load (local.get $acc)) (f32x4.mul (local.get $g4) (local.get $g4))))
        (v128.store (local.get $acc) (local.get $a4))
        (v128.store (local.get $v)
          (f32x4.sub (v128.load (local.get $v))
            (f32x4.div (f32x4.mul (local.get $lr4) (local.get $g4)) (f32x4.sqrt (local.get $a4)))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $acc (i32.add (local.get $acc) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $l))))

  ;; SGD: v -= lr * g
  (func (export "sgd") (param $v i32) (param $g i32) (param $n i32) (param $lr f32)
    (local $end i32) (local $lr4 v128)
    (local.set $lr4 (f32x4.splat (local.get $lr)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (v128.store (local.get $v)
          (f32x4.sub (v128.load (local.get $v)) (f32x4.mul (local.get $lr4) (v128.load (local.get $g)))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $l))))

  ;; Lazy Adam on one row: m = b1 m + (1-b1) g; s = b2 s + (1-b2) g^2; v -= lrt m / (sqrt(s) + eps)
  (func (export "adam") (param $v i32) (param $m i32) (param $s i32) (param $g i32) (param $n i32)
      (param $lrt f32) (param $b1 f32) (param $b2 f32) (param $eps f32)
    (local $end i32) (local $g4 v128) (local $m4 v128) (local $s4 v128)
    (local $lrt4 v128) (local $b14 v128) (local $c14 v128) (local $b24 v128) (local $c24 v128) (local $eps4 v128)
    (local.set $lrt4 (f32x4.splat (local.get $lrt)))
    (local.set $b14 (f32x4.splat (local.get $b1)))
    (local.set $c14 (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $b24 (f32x4.splat (local.get $b2)))
    (local.set $c24 (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $eps4 (f32x4.splat (local.get $eps)))
    (local.set $end (i32.add (local.get $g) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $g) (local.get $end)))
        (local.set $g4 (v128.load (local.get $g)))
        (local.set $m4 (f32x4.add (f32x4.mul (local.get $b14) (v128.load (local.get $m)))
                                  (f32x4.mul (local.get $c14) (local.get $g4))))
        (local.set $s4 (f32x4.add (f32x4.mul (local.get $b24) (v128.load (local.get $s)))
                                  (f32x4.mul (local.get $c24) (f32x4.mul (local.get $g4) (local.get $g4)))))
        (v128.store (local.get $m) (local.get $m4))
        (v128.store (local.get $s) (local.get $s4))
        (v128.store (local.get $v)
          (f32x4.sub (v128.load (local.get $v))
            (f32x4.div (f32x4.mul (local.get $lrt4) (local.get $m4))
                       (f32x4.add (f32x4.sqrt (local.get $s4)) (local.get $eps4)))))
        (local.set $g (i32.add (local.get $g) (i32.const 16)))
        (local.set $m (i32.add (local.get $m) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.const 16)))
        (local.set $v (i32.add (local.get $v) (i32.const 16)))
        (br $l))))
)
