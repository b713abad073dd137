//go:build wasip1

package guest

import (
	"runtime"
	"unsafe"

	"github.com/wsbind/wsbind/internal/sandbox/abi"
)

// inbox is the buffer handed out by the last wsbind_alloc: the input of an
// entry point, or the result of a host call. Holding it here keeps it
// alive until the guest has read it.
var inbox []byte

// outbox holds an entry point's output until the host has read it (the
// next call replaces it).
var outbox []byte

// alloc implements abi.ExportAlloc.
//
//go:wasmexport wsbind_alloc
func alloc(size uint32) uint32 {
	inbox = make([]byte, size)
	if size == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&inbox[0])))
}

// Serve runs an entry point on the input the host wrote into the last
// alloc'd buffer and returns the packed address and length of its output.
// The wasm mains call it from their //go:wasmexport functions.
func Serve(e Entry, ptr, n uint32) uint64 {
	in := take(ptr, n)
	outbox = e(in)
	if len(outbox) == 0 {
		return 0
	}
	return abi.PackPtr(uint32(uintptr(unsafe.Pointer(&outbox[0]))), uint32(len(outbox)))
}

// take returns the inbox if it is the buffer at ptr, and releases it.
func take(ptr, n uint32) []byte {
	b := inbox
	inbox = nil
	if n == 0 {
		return nil
	}
	if len(b) < int(n) || uint32(uintptr(unsafe.Pointer(&b[0]))) != ptr {
		panic("wsbind: the host passed a buffer it did not get from wsbind_alloc")
	}
	return b[:n]
}

// The host functions (abi.Funcs), one import each.

//go:wasmimport wsbind store_get
func hostStoreGet(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind store_create
func hostStoreCreate(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind store_replace
func hostStoreReplace(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind store_delete
func hostStoreDelete(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind store_list
func hostStoreList(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind store_count
func hostStoreCount(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind subscribe
func hostSubscribe(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind subscribers
func hostSubscribers(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind post
func hostPost(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind log
func hostLog(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind conn_put
func hostConnPut(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind conn_drop
func hostConnDrop(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind now
func hostNow() int64

//go:wasmimport wsbind unsubscribe
func hostUnsubscribe(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind claim
func hostClaim(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind settle
func hostSettle(ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport wsbind history
func hostHistory(ptr unsafe.Pointer, n uint32) uint64

// hostFuncs are the imports Call reaches, by Func; FuncNow, whose
// signature differs, is called as hostNow.
var hostFuncs = [...]func(unsafe.Pointer, uint32) uint64{
	abi.FuncStoreGet:     hostStoreGet,
	abi.FuncStoreCreate:  hostStoreCreate,
	abi.FuncStoreReplace: hostStoreReplace,
	abi.FuncStoreDelete:  hostStoreDelete,
	abi.FuncStoreList:    hostStoreList,
	abi.FuncStoreCount:   hostStoreCount,
	abi.FuncSubscribe:    hostSubscribe,
	abi.FuncSubscribers:  hostSubscribers,
	abi.FuncPost:         hostPost,
	abi.FuncLog:          hostLog,
	abi.FuncConnPut:      hostConnPut,
	abi.FuncConnDrop:     hostConnDrop,
	abi.FuncUnsubscribe:  hostUnsubscribe,
	abi.FuncClaim:        hostClaim,
	abi.FuncSettle:       hostSettle,
	abi.FuncHistory:      hostHistory,
}

// Imports is the Caller of a wasm guest: the wsbind host functions.
type Imports struct{}

// Call implements Caller.
func (Imports) Call(fn abi.Func, req []byte) (abi.Status, []byte) {
	inbox = nil
	var p unsafe.Pointer
	if len(req) > 0 {
		p = unsafe.Pointer(&req[0])
	}
	st, n := abi.UnpackResult(hostFuncs[fn](p, uint32(len(req))))
	runtime.KeepAlive(req)
	var res []byte
	if n > 0 {
		res = inbox[:n:n]
	}
	inbox = nil
	return st, res
}

// Now implements Caller.
func (Imports) Now() int64 { return hostNow() }
