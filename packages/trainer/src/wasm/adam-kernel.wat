;; Dense Adam over float32 arrays in this module's memory, two entries per SIMD step in
;; float64 lanes: exactly the arithmetic of the JS `adamStep` in adam-kernel.ts (double
;; intermediates, each result rounded once to float32 when stored), so the two agree bit for bit.
;;   m' = beta1 m + (1 - beta1) g
;;   v' = beta2 v + ((1 - beta2) g) g
;;   x' = x - (rate m') / (sqrt(v') + epsilon)
(module
  (import "env" "memory" (memory 1 65536))
  (func (export "adam")
    (param $values i32) (param $grad i32) (param $m i32) (param $v i32) (param $count i32)
    (param $beta1 f64) (param $beta2 f64) (param $rate f64) (param $eps f64)
    (local $b1 v128) (local $b2 v128) (local $a1 v128) (local $a2 v128)
    (local $r v128) (local $e v128) (local $g v128) (local $mk v128) (local $vk v128)
    (local $i i32) (local $pairs i32) (local $off i32)
    (local $gs f64) (local $ms f64) (local $vs f64)
    (local.set $b1 (f64x2.splat (local.get $beta1)))
    (local.set $b2 (f64x2.splat (local.get $beta2)))
    (local.set $a1 (f64x2.splat (f64.sub (f64.const 1) (local.get $beta1))))
    (local.set $a2 (f64x2.splat (f64.sub (f64.const 1) (local.get $beta2))))
    (local.set $r (f64x2.splat (local.get $rate)))
    (local.set $e (f64x2.splat (local.get $eps)))
    (local.set $pairs (i32.shr_u (local.get $count) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $pairs)))
        (local.set $off (i32.shl (local.get $i) (i32.const 3)))
        (local.set $g (f64x2.promote_low_f32x4
          (v128.load64_zero (i32.add (local.get $grad) (local.get $off)))))
        (local.set $mk (f64x2.add
          (f64x2.mul (local.get $b1) (f64x2.promote_low_f32x4
            (v128.load64_zero (i32.add (local.get $m) (local.get $off)))))
          (f64x2.mul (local.get $a1) (local.get $g))))
        (local.set $vk (f64x2.add
          (f64x2.mul (local.get $b2) (f64x2.promote_low_f32x4
            (v128.load64_zero (i32.add (local.get $v) (local.get $off)))))
          (f64x2.mul (f64x2.mul (local.get $a2) (local.get $g)) (local.get $g))))
        (v128.store64_lane 0 (i32.add (local.get $m) (local.get $off))
          (f32x4.demote_f64x2_zero (local.get $mk)))
        (v128.store64_lane 0 (i32.add (local.get $v) (local.get $off))
          (f32x4.demote_f64x2_zero (local.get $vk)))
        (v128.store64_lane 0 (i32.add (local.get $values) (local.get $off))
          (f32x4.demote_f64x2_zero
            (f64x2.sub
              (f64x2.promote_low_f32x4
                (v128.load64_zero (i32.add (local.get $values) (local.get $off))))
              (f64x2.div
                (f64x2.mul (local.get $r) (local.get $mk))
                (f64x2.add (f64x2.sqrt (local.get $vk)) (local.get $e))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; An odd count: the last entry in scalar float64.
    (if (i32.and (local.get $count) (i32.const 1))
      (then
        (local.set $off (i32.shl (i32.sub (local.get $count) (i32.const 1)) (i32.const 2)))
        (local.set $gs (f64.promote_f32 (f32.load (i32.add (local.get $grad) (local.get $off)))))
        (local.set $ms (f64.add
          (f64.mul (local.get $beta1)
            (f64.promote_f32 (f32.load (i32.add (local.get $m) (local.get $off)))))
          (f64.mul (f64.sub (f64.const 1) (local.get $beta1)) (local.get $gs))))
        (local.set $vs (f64.add
          (f64.mul (local.get $beta2)
            (f64.promote_f32 (f32.load (i32.add (local.get $v) (local.get $off)))))
          (f64.mul (f64.mul (f64.sub (f64.const 1) (local.get $beta2)) (local.get $gs))
            (local.get $gs))))
        (f32.store (i32.add (local.get $m) (local.get $off)) (f32.demote_f64 (local.get $ms)))
        (f32.store (i32.add (local.get $v) (local.get $off)) (f32.demote_f64 (local.get $vs)))
        (f32.store (i32.add (local.get $values) (local.get $off))
          (f32.demote_f64
            (f64.sub
              (f64.promote_f32 (f32.load (i32.add (local.get $values) (local.get $off))))
              (f64.div (f64.mul (local.get $rate) (local.get $ms))
                (f64.add (f64.sqrt (local.get $vs)) (local.get $eps)))))))))
)
