// The kernel sources compiled for the host emulator (SWIN_TRT_EMULATION, see cuda_compat.cuh): one
// translation unit so that the .cu files keep their CUDA language in the real build.
#if !defined(SWIN_TRT_EMULATION)
#error "build emulated_kernels.cpp with -DSWIN_TRT_EMULATION"
#endif
#include "../SwinWindowAttention/swinWindowAttentionKernel.cu"
#include "../SwinWindowAttention/swinWindowAttentionTensorCoreKernel.cu"
#include "../SwinWindowPartition/swinWindowPartitionKernel.cu"
#include "../SwinWindowReverse/swinWindowReverseKernel.cu"
