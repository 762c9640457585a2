;; Classic per-triple SGD BPR (Cornac's and implicit's algorithm) as one WebAssembly SIMD
;; loop: sampling and updates in the same thread, no batch ring. Each call runs `count`
;; triples: a training pair (u, i) drawn uniformly with replacement, a negative j drawn
;; uniformly from the candidate items and drawn again while it is one of u's training items
;; (at most 64 draws; a triple whose 64 draws all hit positives is skipped and counted),
;; then x = p_u . (q_i - q_j) (+ b_i - b_j with an item bias) and, with z = sigmoid(-x),
;;   p_u += lr (z (q_i - q_j) - reg p_u)
;;   q_i += lr (z p_u - reg q_i)
;;   q_j += lr (-z p_u - reg q_j)
;;   b_i += lr (z - reg b_i),  b_j += lr (-z - reg b_j)
;; (every update reads the rows as they were before the triple). Several threads may run
;; it on the same tables at once (Hogwild): rows are written without locks.
;;
;; Rows are float32, 16-byte aligned, `row` bytes apart (the embedding size padded to a
;; multiple of 4 floats with zeros, which stay zero). All pointers are byte offsets into the
;; shared memory. The generator is xorshift32, one 4-byte state per thread; bounded draws
;; take the high word of a 32x32-bit product (Lemire) of the xorshift32* output (the state
;; times 0x2545F491), so a stream is a pure function of its state. xorshift32 is linear: the
;; raw state's high bits tied each training pair to a narrow set of negatives (the next
;; state), which slowed late convergence (Gowalla Recall@20 0.1504 vs 0.1525 after 500
;; epochs); the multiplication breaks that. exp and log1p are computed here in double precision (relative error below
;; 1e-12 on the ranges used), not imported: a call out of WebAssembly per triple would cost
;; a fifth of the loop. Both are exported for the tests.
;;
;; Rebuild the embedded bytes with `pnpm --filter @advrec/trainer build:wasm` (wabt).
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; exp(-a) for a >= 0: a = n ln2 + r, r in [0, ln2); exp(-r) by its Taylor series to
  ;; r^13 / 13! (Horner), times 2^-n built from the exponent bits. 0 beyond a = 700.
  (func $expNeg (export "expNeg") (param $a f64) (result f64)
    (local $n i32) (local $r f64)
    (if (f64.gt (local.get $a) (f64.const 700)) (then (return (f64.const 0))))
    (local.set $n (i32.trunc_f64_u (f64.mul (local.get $a) (f64.const 1.4426950408889634))))
    (local.set $r (f64.neg (f64.sub (local.get $a)
      (f64.mul (f64.convert_i32_u (local.get $n)) (f64.const 0.6931471805599453)))))
    (f64.mul
      (f64.add (f64.const 1) (f64.mul (local.get $r)
      (f64.add (f64.const 1) (f64.mul (local.get $r)
      (f64.add (f64.const 0.5) (f64.mul (local.get $r)
      (f64.add (f64.const 1.6666666666666666e-1) (f64.mul (local.get $r)
      (f64.add (f64.const 4.1666666666666664e-2) (f64.mul (local.get $r)
      (f64.add (f64.const 8.333333333333333e-3) (f64.mul (local.get $r)
      (f64.add (f64.const 1.388888888888889e-3) (f64.mul (local.get $r)
      (f64.add (f64.const 1.984126984126984e-4) (f64.mul (local.get $r)
      (f64.add (f64.const 2.48015873015873e-5) (f64.mul (local.get $r)
      (f64.add (f64.const 2.7557319223985893e-6) (f64.mul (local.get $r)
      (f64.add (f64.const 2.755731922398589e-7) (f64.mul (local.get $r)
      (f64.add (f64.const 2.505210838544172e-8) (f64.mul (local.get $r)
      (f64.add (f64.const 2.08767569878681e-9) (f64.mul (local.get $r)
        (f64.const 1.6059043836821613e-10)))))))))))))))))))))))))))
      (f64.reinterpret_i64 (i64.shl (i64.extend_i32_u (i32.sub (i32.const 1023) (local.get $n)))
        (i64.const 52)))))

  ;; log1p(e) for e in [0, 1]: 2 atanh(s), s = e / (2 + e) <= 1/3, by its series to s^23.
  (func $log1p (export "log1p") (param $e f64) (result f64)
    (local $s f64) (local $q f64)
    (local.set $s (f64.div (local.get $e) (f64.add (f64.const 2) (local.get $e))))
    (local.set $q (f64.mul (local.get $s) (local.get $s)))
    (f64.mul (f64.mul (f64.const 2) (local.get $s))
      (f64.add (f64.const 1) (f64.mul (local.get $q)
      (f64.add (f64.const 3.333333333333333e-1) (f64.mul (local.get $q)
      (f64.add (f64.const 0.2) (f64.mul (local.get $q)
      (f64.add (f64.const 1.4285714285714285e-1) (f64.mul (local.get $q)
      (f64.add (f64.const 1.1111111111111111e-1) (f64.mul (local.get $q)
      (f64.add (f64.const 9.090909090909091e-2) (f64.mul (local.get $q)
      (f64.add (f64.const 7.692307692307693e-2) (f64.mul (local.get $q)
      (f64.add (f64.const 6.666666666666667e-2) (f64.mul (local.get $q)
      (f64.add (f64.const 5.88235294117647e-2) (f64.mul (local.get $q)
      (f64.add (f64.const 5.263157894736842e-2) (f64.mul (local.get $q)
      (f64.add (f64.const 4.7619047619047616e-2) (f64.mul (local.get $q)
        (f64.const 4.3478260869565216e-2)))))))))))))))))))))))))

  ;; Runs `count` triples. stats (f64 x 4, added to): loss, correct, triples, skipped.
  (func (export "sgdTriples")
      (param $P i32) (param $Q i32) (param $row i32)
      (param $entryUsers i32) (param $entryItems i32) (param $nnz i32)
      (param $rowPtr i32) (param $cols i32)
      (param $candidates i32) (param $numCandidates i32)
      (param $count i32) (param $statePtr i32) (param $lr f32) (param $reg f32) (param $stats i32)
      (param $bias i32) ;; byte offset of the item bias (f32 per item), or -1 without one
    (local $item i32) (local $bi f32) (local $bj f32) (local $keep f32) (local $lrz f32)
    (local $s i32) (local $t i32) (local $e i32) (local $u i32) (local $j i32)
    (local $lo i32) (local $hi i32) (local $mid i32) (local $c i32) (local $hit i32)
    (local $tries i32) (local $pu i32) (local $qi i32) (local $qj i32) (local $end i32)
    (local $acc v128) (local $p v128) (local $a v128) (local $b v128) (local $d v128)
    (local $z4 v128)  (local $keep4 v128)
    (local $x f64) (local $ex f64) (local $z f64)
    (local $loss f64) (local $correct f64) (local $done f64) (local $skipped f64)
    (local.set $s (i32.load (local.get $statePtr)))
    ;; (1 - lr reg): the decay of every updated row.
    (local.set $keep (f32.sub (f32.const 1) (f32.mul (local.get $lr) (local.get $reg))))
    (local.set $keep4 (f32x4.splat (local.get $keep)))
    (block $finished
      (loop $triple
        (br_if $finished (i32.ge_u (local.get $t) (local.get $count)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        ;; The training pair, uniformly with replacement.
        (local.set $s (i32.xor (local.get $s) (i32.shl (local.get $s) (i32.const 13))))
        (local.set $s (i32.xor (local.get $s) (i32.shr_u (local.get $s) (i32.const 17))))
        (local.set $s (i32.xor (local.get $s) (i32.shl (local.get $s) (i32.const 5))))
        (local.set $e (i32.shl (i32.wrap_i64 (i64.shr_u
          (i64.mul (i64.extend_i32_u (i32.mul (local.get $s) (i32.const 0x2545F491))) (i64.extend_i32_u (local.get $nnz)))
          (i64.const 32))) (i32.const 2)))
        (local.set $u (i32.load (i32.add (local.get $entryUsers) (local.get $e))))
        (local.set $item (i32.load (i32.add (local.get $entryItems) (local.get $e))))
        (local.set $qi (i32.add (local.get $Q) (i32.mul (local.get $item) (local.get $row))))
        ;; The negative: a candidate that is not one of u's training items.
        (local.set $tries (i32.const 0))
        (block $found
          (loop $draw
            (if (i32.ge_u (local.get $tries) (i32.const 64))
              (then
                (local.set $skipped (f64.add (local.get $skipped) (f64.const 1)))
                (br $triple)))
            (local.set $tries (i32.add (local.get $tries) (i32.const 1)))
            (local.set $s (i32.xor (local.get $s) (i32.shl (local.get $s) (i32.const 13))))
            (local.set $s (i32.xor (local.get $s) (i32.shr_u (local.get $s) (i32.const 17))))
            (local.set $s (i32.xor (local.get $s) (i32.shl (local.get $s) (i32.const 5))))
            (local.set $j (i32.load (i32.add (local.get $candidates) (i32.shl (i32.wrap_i64 (i64.shr_u
              (i64.mul (i64.extend_i32_u (i32.mul (local.get $s) (i32.const 0x2545F491))) (i64.extend_i32_u (local.get $numCandidates)))
              (i64.const 32))) (i32.const 2)))))
            ;; Binary search of j in u's sorted training items cols[rowPtr[u] .. rowPtr[u+1]).
            (local.set $lo (i32.load (i32.add (local.get $rowPtr) (i32.shl (local.get $u) (i32.const 2)))))
            (local.set $hi (i32.load (i32.add (local.get $rowPtr)
              (i32.shl (i32.add (local.get $u) (i32.const 1)) (i32.const 2)))))
            (local.set $hit (i32.const 0))
            (block $searched
              (loop $search
                (br_if $searched (i32.ge_s (local.get $lo) (local.get $hi)))
                (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))
                (local.set $c (i32.load (i32.add (local.get $cols) (i32.shl (local.get $mid) (i32.const 2)))))
                (if (i32.eq (local.get $c) (local.get $j))
                  (then (local.set $hit (i32.const 1)) (br $searched)))
                (if (i32.lt_s (local.get $c) (local.get $j))
                  (then (local.set $lo (i32.add (local.get $mid) (i32.const 1))))
                  (else (local.set $hi (local.get $mid))))
                (br $search)))
            (br_if $draw (local.get $hit))))
        (local.set $pu (i32.add (local.get $P) (i32.mul (local.get $u) (local.get $row))))
        (local.set $qj (i32.add (local.get $Q) (i32.mul (local.get $j) (local.get $row))))
        ;; x = p_u . (q_i - q_j)
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (local.set $end (i32.add (local.get $pu) (local.get $row)))
        (local.set $mid (local.get $pu))
        (local.set $lo (local.get $qi))
        (local.set $hi (local.get $qj))
        (block $dotted
          (loop $dot
            (br_if $dotted (i32.ge_u (local.get $mid) (local.get $end)))
            (local.set $acc (f32x4.add (local.get $acc)
              (f32x4.mul (v128.load (local.get $mid))
                (f32x4.sub (v128.load (local.get $lo)) (v128.load (local.get $hi))))))
            (local.set $mid (i32.add (local.get $mid) (i32.const 16)))
            (local.set $lo (i32.add (local.get $lo) (i32.const 16)))
            (local.set $hi (i32.add (local.get $hi) (i32.const 16)))
            (br $dot)))
        (local.set $x (f64.add
          (f64.add
            (f64.promote_f32 (f32x4.extract_lane 0 (local.get $acc)))
            (f64.promote_f32 (f32x4.extract_lane 1 (local.get $acc))))
          (f64.add
            (f64.promote_f32 (f32x4.extract_lane 2 (local.get $acc)))
            (f64.promote_f32 (f32x4.extract_lane 3 (local.get $acc))))))
        (if (i32.ge_s (local.get $bias) (i32.const 0))
          (then
            (local.set $bi (f32.load (i32.add (local.get $bias) (i32.shl (local.get $item) (i32.const 2)))))
            (local.set $bj (f32.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $x (f64.add (local.get $x)
              (f64.promote_f32 (f32.sub (local.get $bi) (local.get $bj)))))))
        ;; ex = exp(-|x|); z = sigmoid(-x); loss += softplus(-x) = max(-x, 0) + log1p(ex).
        (local.set $ex (call $expNeg (f64.abs (local.get $x))))
        (if (f64.gt (local.get $x) (f64.const 0))
          (then
            (local.set $z (f64.div (local.get $ex) (f64.add (f64.const 1) (local.get $ex))))
            (local.set $correct (f64.add (local.get $correct) (f64.const 1)))
            (local.set $loss (f64.add (local.get $loss) (call $log1p (local.get $ex)))))
          (else
            (local.set $z (f64.div (f64.const 1) (f64.add (f64.const 1) (local.get $ex))))
            (local.set $loss (f64.add (local.get $loss)
              (f64.sub (call $log1p (local.get $ex)) (local.get $x))))))
        (local.set $done (f64.add (local.get $done) (f64.const 1)))
        ;; p' = (1 - lr reg) p + lr z (a - b); a' = (1 - lr reg) a + lr z p; b' = (1 - lr reg) b - lr z p
        (local.set $lrz (f32.mul (local.get $lr) (f32.demote_f64 (local.get $z))))
        (local.set $z4 (f32x4.splat (local.get $lrz)))
        (if (i32.ge_s (local.get $bias) (i32.const 0))
          (then
            (f32.store (i32.add (local.get $bias) (i32.shl (local.get $item) (i32.const 2)))
              (f32.add (f32.mul (local.get $keep) (local.get $bi)) (local.get $lrz)))
            (f32.store (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))
              (f32.sub (f32.mul (local.get $keep) (local.get $bj)) (local.get $lrz)))))
        (local.set $mid (local.get $pu))
        (local.set $lo (local.get $qi))
        (local.set $hi (local.get $qj))
        (block $updated
          (loop $update
            (br_if $updated (i32.ge_u (local.get $mid) (local.get $end)))
            (local.set $p (v128.load (local.get $mid)))
            (local.set $a (v128.load (local.get $lo)))
            (local.set $b (v128.load (local.get $hi)))
            (local.set $d (f32x4.mul (local.get $z4) (local.get $p)))
            (v128.store (local.get $mid) (f32x4.add (f32x4.mul (local.get $keep4) (local.get $p))
              (f32x4.mul (local.get $z4) (f32x4.sub (local.get $a) (local.get $b)))))
            (v128.store (local.get $lo) (f32x4.add (f32x4.mul (local.get $keep4) (local.get $a)) (local.get $d)))
            (v128.store (local.get $hi) (f32x4.sub (f32x4.mul (local.get $keep4) (local.get $b)) (local.get $d)))
            (local.set $mid (i32.add (local.get $mid) (i32.const 16)))
            (local.set $lo (i32.add (local.get $lo) (i32.const 16)))
            (local.set $hi (i32.add (local.get $hi) (i32.const 16)))
            (br $update)))
        (br $triple)))
    (i32.store (local.get $statePtr) (local.get $s))
    (f64.store (local.get $stats) (f64.add (f64.load (local.get $stats)) (local.get $loss)))
    (f64.store offset=8 (local.get $stats) (f64.add (f64.load offset=8 (local.get $stats)) (local.get $correct)))
    (f64.store offset=16 (local.get $stats) (f64.add (f64.load offset=16 (local.get $stats)) (local.get $done)))
    (f64.store offset=24 (local.get $stats) (f64.add (f64.load offset=24 (local.get $stats)) (local.get $skipped))))
;; sum_f v[f]^2 over n floats (n a multiple of 4), squares and sums in double precision:
  ;; the parameter norm the trainer records after each epoch, without a pass in JS.
  (func (export "sumSquares") (param $p i32) (param $n i32) (result f64)
    (local $end i32) (local $v v128) (local $lo v128) (local $hi v128) (local $a v128) (local $b v128)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (v128.load (local.get $p)))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $hi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $v) (local.get $v))))
        (local.set $a (f64x2.add (local.get $a) (f64x2.mul (local.get $lo) (local.get $lo))))
        (local.set $b (f64x2.add (local.get $b) (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l)))
    (f64.add
      (f64.add (f64x2.extract_lane 0 (local.get $a)) (f64x2.extract_lane 1 (local.get $a)))
      (f64.add (f64x2.extract_lane 0 (local.get $b)) (f64x2.extract_lane 1 (local.get $b)))))
)
