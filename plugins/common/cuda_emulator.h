// Host emulator for the swin_trt kernels (test-only; selected with -DSWIN_TRT_EMULATION, see cuda_compat.cuh).
//
// Runs a kernel grid block by block; the threads of a block are cooperative fibers (ucontext) that switch
// only at barriers (__syncthreads, __syncwarp, warp reductions). This executes the real kernel source with
// CUDA's block/warp semantics on the CPU, deterministically, with host pointers, so the kernels' index math,
// tiling and reductions are tested on machines without a GPU. It does not model memory spaces, alignment
// faults, races inside a barrier interval or performance. POSIX only (Linux, macOS).
//
// Thread safety: the block being run, its fibers and every `__shared__` variable are thread_local, so
// host threads (e.g. Python threads calling libswin_trt_capi_emu through ctypes, which releases the GIL)
// each emulate their own launches; fibers never leave the thread that created them.
#ifndef SWIN_TRT_CUDA_EMULATOR_H
#define SWIN_TRT_CUDA_EMULATOR_H

#if !defined(SWIN_TRT_EMULATION)
#error "cuda_emulator.h is only for SWIN_TRT_EMULATION builds"
#endif

#include <cuda_runtime_api.h> // cudaError_t, cudaStream_t (types only; nothing from libcudart is called)
#include <vector_functions.h>
#include <vector_types.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include <functional>
#include <memory>
#include <vector>

// Execution-space and memory-space keywords become plain C++ (host_defines.h maps them to attributes).
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#undef __align__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

namespace swin_emu
{

enum class FiberState
{
    kReady,
    kBlockBarrier,
    kWarpBarrier,
    kDone
};

constexpr size_t kStackBytes = 64 * 1024;

struct Fiber
{
    ucontext_t ctx;
    uint3 tid;
    FiberState state;
};

//! Unit of the emulated dynamic shared memory: over-aligned, so that a kernel's offsets keep the alignment they
//! have on the GPU (whose dynamic shared memory starts at least 128-byte aligned).
struct alignas(128) SmemLine
{
    float v[32];
};

struct BlockRun
{
    uint3 blockIdx;
    dim3 blockDim;
    dim3 gridDim;
    std::vector<Fiber> fibers;
    std::vector<std::unique_ptr<char[]>> stacks; // one per fiber, reused across launches
    std::vector<SmemLine> smem; // dynamic shared memory, 128-byte aligned (wmma needs 32)
    std::vector<float> warpScratch;
    ucontext_t scheduler;
    int32_t current = 0;
    std::function<void()> const* body = nullptr;
};

inline BlockRun& run()
{
    static thread_local BlockRun sRun;
    return sRun;
}

inline Fiber& self()
{
    return run().fibers[run().current];
}

inline void* dynamicSmem()
{
    return run().smem.data();
}

inline void yieldWith(FiberState state)
{
    Fiber& f = self();
    f.state = state;
    swapcontext(&f.ctx, &run().scheduler);
}

inline void syncThreads()
{
    yieldWith(FiberState::kBlockBarrier);
}

inline void syncWarp()
{
    yieldWith(FiberState::kWarpBarrier);
}

inline float warpAllReduce(float v, bool isMax)
{
    BlockRun& r = run();
    int32_t const linear = r.current;
    int32_t const warp = linear / 32;
    r.warpScratch[linear] = v;
    syncWarp();
    int32_t const first = warp * 32;
    int32_t const last = first + 32 < static_cast<int32_t>(r.fibers.size()) ? first + 32 : static_cast<int32_t>(r.fibers.size());
    float acc = r.warpScratch[first];
    for (int32_t i = first + 1; i < last; ++i)
    {
        acc = isMax ? fmaxf(acc, r.warpScratch[i]) : acc + r.warpScratch[i];
    }
    syncWarp(); // nobody overwrites the scratch before every lane has read it
    return acc;
}

//! __shfl_xor_sync(0xffffffff, v, laneMask): the value of lane (lane ^ laneMask). All 32 lanes must call it.
inline float warpShuffleXor(float v, int32_t laneMask)
{
    BlockRun& r = run();
    int32_t const linear = r.current;
    r.warpScratch[linear] = v;
    syncWarp();
    int32_t const source = (linear & ~31) | ((linear & 31) ^ (laneMask & 31));
    float const out = source < static_cast<int32_t>(r.fibers.size()) ? r.warpScratch[source] : v;
    syncWarp(); // nobody overwrites the scratch before every lane has read it
    return out;
}

inline void fiberEntry()
{
    (*run().body)();
    self().state = FiberState::kDone; // returns to uc_link (the scheduler)
}

[[noreturn]] inline void fail(char const* what)
{
    fprintf(stderr, "swin_emu: %s (block %u,%u,%u)\n", what, run().blockIdx.x, run().blockIdx.y, run().blockIdx.z);
    abort();
}

//! Runs one block to completion.
inline void runBlock()
{
    BlockRun& r = run();
    int32_t const n = static_cast<int32_t>(r.fibers.size());
    for (int32_t i = 0; i < n; ++i)
    {
        Fiber& f = r.fibers[i];
        f.state = FiberState::kReady;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = r.stacks[i].get();
        f.ctx.uc_stack.ss_size = kStackBytes;
        f.ctx.uc_link = &r.scheduler;
        makecontext(&f.ctx, fiberEntry, 0);
    }
    while (true)
    {
        for (int32_t i = 0; i < n; ++i)
        {
            if (r.fibers[i].state == FiberState::kReady)
            {
                r.current = i;
                swapcontext(&r.scheduler, &r.fibers[i].ctx);
            }
        }
        // Everybody is done or waits at a barrier: release what can be released.
        bool anyAlive = false;
        bool released = false;
        bool allAtBlockBarrier = true;
        for (int32_t w = 0; w * 32 < n; ++w)
        {
            int32_t const last = (w + 1) * 32 < n ? (w + 1) * 32 : n;
            bool warpAtWarpBarrier = true;
            bool warpAlive = false;
            for (int32_t i = w * 32; i < last; ++i)
            {
                FiberState const s = r.fibers[i].state;
                if (s == FiberState::kDone)
                {
                    continue;
                }
                warpAlive = true;
                anyAlive = true;
                warpAtWarpBarrier = warpAtWarpBarrier && s == FiberState::kWarpBarrier;
                allAtBlockBarrier = allAtBlockBarrier && s == FiberState::kBlockBarrier;
            }
            if (warpAlive && warpAtWarpBarrier)
            {
                for (int32_t i = w * 32; i < last; ++i)
                {
                    if (r.fibers[i].state == FiberState::kWarpBarrier)
                    {
                        r.fibers[i].state = FiberState::kReady;
                    }
                }
                released = true;
            }
        }
        if (!anyAlive)
        {
            return;
        }
        if (!released && allAtBlockBarrier)
        {
            for (Fiber& f : r.fibers)
            {
                if (f.state == FiberState::kBlockBarrier)
                {
                    f.state = FiberState::kReady;
                }
            }
            released = true;
        }
        if (!released)
        {
            fail("deadlock: threads wait at different barriers");
        }
    }
}

inline void runGrid(std::function<void()> const& body, dim3 grid, dim3 block, size_t smemBytes)
{
    BlockRun& r = run();
    int32_t const n = static_cast<int32_t>(block.x * block.y * block.z);
    if (n <= 0 || n > 1024)
    {
        fail("invalid block size");
    }
    r.body = &body;
    r.blockDim = block;
    r.gridDim = grid;
    r.fibers.assign(n, Fiber{});
    while (static_cast<int32_t>(r.stacks.size()) < n)
    {
        r.stacks.emplace_back(new char[kStackBytes]);
    }
    r.warpScratch.assign(((n + 31) / 32) * 32, 0.0F);
    for (int32_t i = 0; i < n; ++i)
    {
        r.fibers[i].tid = make_uint3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
    }
    for (uint32_t bz = 0; bz < grid.z; ++bz)
    {
        for (uint32_t by = 0; by < grid.y; ++by)
        {
            for (uint32_t bx = 0; bx < grid.x; ++bx)
            {
                r.blockIdx = make_uint3(bx, by, bz);
                // Fresh, poisoned shared memory for every block (NaN patterns catch reads of unwritten data).
                SmemLine poison;
                for (float& v : poison.v)
                {
                    v = NAN;
                }
                r.smem.assign((smemBytes + sizeof(SmemLine) - 1) / sizeof(SmemLine), poison);
                runBlock();
            }
        }
    }
}

template <typename... Params>
struct Launch
{
    void (*kernel)(Params...);
    dim3 grid;
    dim3 block;
    size_t smem;

    template <typename... Args>
    void operator()(Args... args) const
    {
        std::function<void()> const body = [&]() { kernel(static_cast<Params>(args)...); };
        runGrid(body, grid, block, smem);
    }
};

template <typename... Params>
Launch<Params...> makeLaunch(dim3 grid, dim3 block, size_t smem, void (*kernel)(Params...))
{
    return Launch<Params...>{kernel, grid, block, smem};
}

} // namespace swin_emu

#define threadIdx (::swin_emu::self().tid)
#define blockIdx (::swin_emu::run().blockIdx)
#define blockDim (::swin_emu::run().blockDim)
#define gridDim (::swin_emu::run().gridDim)

#endif // SWIN_TRT_CUDA_EMULATOR_H
