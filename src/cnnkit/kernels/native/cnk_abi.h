/* The two functions every cnnkit C library exports for its loader (kernels/native/loader.py).
 *
 *   cnnkit_abi_version()  the version of the library's function signatures; the loader refuses
 *                         a library whose number differs from the one its table was written
 *                         for (define CNK_ABI_VERSION before including this header, and bump
 *                         it whenever an exported signature changes)
 *   cnnkit_cpu_level()    what the running CPU can execute: 2 AVX-512 (F, BW, DQ, VL) with
 *                         AVX2 and FMA, 1 AVX2 and FMA, 0 the baseline (any other CPU or
 *                         architecture); the loader picks the build variant with this level
 *
 * The library is built several times (setup.py): a baseline build (x86-64: SSE2 only) and,
 * on x86-64, AVX2 and AVX-512 variants; only the baseline build's cnnkit_cpu_level is called.
 */
#ifndef CNK_ABI_H
#define CNK_ABI_H

int cnnkit_abi_version(void) { return CNK_ABI_VERSION; }

int cnnkit_cpu_level(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 2;
    return avx2 ? 1 : 0;
#else
    return 0;
#endif
}

#endif
