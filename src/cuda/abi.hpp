// Our own declarations of the few CUDA driver API entry points with-gpu uses, as CUDA 13's
// cuda.h declares them; cuda.h itself is not needed to build. Where cuda.h maps a name to a
// suffixed symbol with a macro (cuMemAlloc -> cuMemAlloc_v2, ...), the suffixed symbol is
// declared: the unsuffixed ones are legacy ABIs with 32-bit sizes. The CUDA driver simulator
// in sim/ implements these same declarations, so the two cannot drift apart.
#pragma once

#include <cstddef>

extern "C" {

// NOLINTBEGIN(modernize-use-using): spelled as NVIDIA's C header spells it
typedef int CUresult; // an int-sized enum in cuda.h
typedef int CUdevice; // a device ordinal
typedef struct CUctx_st* CUcontext;
typedef unsigned long long CUdeviceptr; // CUdeviceptr_v2 on 64-bit hosts
// NOLINTEND(modernize-use-using)

enum : int {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_STUB_LIBRARY = 34,
    CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER = 36,
    CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_CONTEXT = 201,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_PERMITTED = 800,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
    CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
    CUDA_ERROR_UNKNOWN = 999,
};

CUresult cuInit(unsigned int Flags);             // Flags must be 0
CUresult cuDriverGetVersion(int* driverVersion); // 1000 * major + 10 * minor, e.g. 12040
CUresult cuDeviceGetCount(int* count);
// "domain:bus:device.function", "domain:bus:device" or "bus:device.function", in hex.
CUresult cuDeviceGetByPCIBusId(CUdevice* dev, const char* pciBusId);
CUresult cuDeviceGetPCIBusId(char* pciBusId, int len, CUdevice dev);
CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev);
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev);
CUresult cuCtxSetCurrent(CUcontext ctx); // per thread; NULL unbinds
CUresult cuCtxGetCurrent(CUcontext* pctx);
CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total); // of the current context
CUresult cuMemAlloc_v2(CUdeviceptr* dptr, std::size_t bytesize);
CUresult cuMemFree_v2(CUdeviceptr dptr);
// Both leave *pStr NULL and return CUDA_ERROR_INVALID_VALUE for a code they do not know.
CUresult cuGetErrorString(CUresult error, const char** pStr);
CUresult cuGetErrorName(CUresult error, const char** pStr);

} // extern "C"

// The ABI is LP64 (x86-64, aarch64): the _v2 entry points exist because these widened.
static_assert(sizeof(CUresult) == 4);
static_assert(sizeof(CUdevice) == 4);
static_assert(sizeof(CUdeviceptr) == 8);
static_assert(sizeof(std::size_t) == 8);
static_assert(sizeof(CUcontext) == sizeof(void*));
