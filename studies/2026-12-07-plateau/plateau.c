/* bpr-ref.c (../../../shared/tools/bpr-ref.c, Cornac's BPR loop in C) with what the plateau
 * study needs and nothing else changed in the loop: a seed, the initialisation as a switch
 * (Cornac's uniform +-0.01, or advrec's truncated normal with std 0.01), and the factors
 * written at given epochs (float32 U, V, b, row-major) for the evaluator.
 * Usage: plateau train.txt K epochs threads seed init(uniform|normal) out dump1,dump2,...
 * Build: gcc -O3 -march=native -fopenmp -o plateau plateau.c -lm */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int cmpi(const void *a, const void *b) { return *(int *)a - *(int *)b; }
static inline unsigned xs(unsigned *s) { unsigned x = *s; x ^= x << 13; x ^= x >> 17; x ^= x << 5; return *s = x; }
static float uniform01(unsigned *s) { return (xs(s) + 0.5f) / 4294967296.0f; }
static float init(unsigned *s, int normal) {
  if (!normal) return (xs(s) / 4294967296.0 - .5) * .02;
  for (;;) { /* Box-Muller, redrawn beyond 2 std (a truncated normal) */
    float z = sqrtf(-2.f * logf(uniform01(s))) * cosf(6.2831853f * uniform01(s));
    if (fabsf(z) <= 2.f) return .01f * z;
  }
}
int main(int argc, char **argv) {
  if (argc < 9) { fprintf(stderr, "usage: plateau train.txt K epochs threads seed uniform|normal out dumps\n"); return 2; }
  int K = atoi(argv[2]), E = atoi(argv[3]), T = atoi(argv[4]); unsigned seed = (unsigned)atoi(argv[5]);
  int normal = strcmp(argv[6], "normal") == 0; const char *out = argv[7];
  int dumps[64], nd = 0; for (char *p = strtok(argv[8], ","); p && nd < 64; p = strtok(NULL, ",")) dumps[nd++] = atoi(p);
  FILE *f = fopen(argv[1], "r"); static char line[1 << 20];
  if (!f) { perror(argv[1]); return 1; }
  int cap = 1 << 20, n = 0, nu = 0, ni = 0; int *us = malloc(cap * 4), *is = malloc(cap * 4);
  while (fgets(line, sizeof line, f)) {
    char *p = line, *q; long u = strtol(p, &q, 10); if (q == p) continue; p = q;
    for (;;) { long i = strtol(p, &q, 10); if (q == p) break; p = q;
      if (n == cap) { cap *= 2; us = realloc(us, cap * 4); is = realloc(is, cap * 4); }
      us[n] = u; is[n] = i; n++; if (i + 1 > ni) ni = i + 1; }
    if (u + 1 > nu) nu = u + 1;
  }
  if (argc > 9) { int a = atoi(argv[9]), b = atoi(argv[10]); if (a > nu) nu = a; if (b > ni) ni = b; }
  int *rp = calloc(nu + 1, 4), *ci = malloc(n * 4);
  for (int k = 0; k < n; k++) rp[us[k] + 1]++;
  for (int u = 0; u < nu; u++) rp[u + 1] += rp[u];
  int *fill = calloc(nu, 4); for (int k = 0; k < n; k++) ci[rp[us[k]] + fill[us[k]]++] = is[k];
  for (int u = 0; u < nu; u++) qsort(ci + rp[u], rp[u + 1] - rp[u], 4, cmpi);
  float *U = malloc((size_t)nu * K * 4), *V = malloc((size_t)ni * K * 4), *b = calloc(ni, 4);
  unsigned s0 = 12345u + 7919u * seed; for (long k = 0; k < (long)nu * K; k++) U[k] = init(&s0, normal);
  for (long k = 0; k < (long)ni * K; k++) V[k] = init(&s0, normal);
  const float lr = .05f, reg = .001f;
  omp_set_num_threads(T);
  int next = 0;
  for (int e = 0; e < E; e++) {
#pragma omp parallel
    {
      unsigned s = 2654435761u * (omp_get_thread_num() + 1) + e * 97 + seed * 1000003u;
#pragma omp for schedule(static)
      for (long k = 0; k < n; k++) {
        int idx = xs(&s) % n, u = us[idx], i = is[idx], j = xs(&s) % ni;
        int lo = rp[u], hi = rp[u + 1] - 1, hit = 0;
        while (lo <= hi) { int m = (lo + hi) >> 1; if (ci[m] == j) { hit = 1; break; } if (ci[m] < j) lo = m + 1; else hi = m - 1; }
        if (hit) continue;
        float *pu = U + (size_t)u * K, *qi = V + (size_t)i * K, *qj = V + (size_t)j * K, z = b[i] - b[j];
        for (int d = 0; d < K; d++) z += pu[d] * (qi[d] - qj[d]);
        z = 1.f / (1.f + expf(z));
        for (int d = 0; d < K; d++) { float t = pu[d];
          pu[d] += lr * (z * (qi[d] - qj[d]) - reg * t); qi[d] += lr * (z * t - reg * qi[d]); qj[d] += lr * (-z * t - reg * qj[d]); }
        b[i] += lr * (z - reg * b[i]); b[j] += lr * (-z - reg * b[j]);
      }
    }
    while (next < nd && dumps[next] == e + 1) {
      char name[4096]; snprintf(name, sizeof name, "%s-e%d.bin", out, e + 1);
      FILE *o = fopen(name, "wb"); fwrite(U, 4, (size_t)nu * K, o); fwrite(V, 4, (size_t)ni * K, o); fwrite(b, 4, ni, o); fclose(o);
      printf("wrote %s\n", name); fflush(stdout); next++;
    }
  }
  printf("users %d items %d pairs %d\n", nu, ni, n);
  return 0;
}
