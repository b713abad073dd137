// Package abi is the contract between the native host and the WebAssembly
// guests, written down as Go types and constants. Both sides import it;
// nothing else crosses the boundary.
//
// # Calls into the guest
//
// Every guest exports ExportAlloc and some of the entry points below. To
// call an entry point the host asks the guest for a buffer, writes the
// input there, and calls the entry point with the buffer's address and
// length. The entry point returns its output's address and length packed
// in one i64 (PackPtr); the output stays valid until the next call.
//
//	ptr := wsbind_alloc(len(in))         // guest keeps the buffer alive
//	write(ptr, in)
//	out := wsbind_route(ptr, len(in))    // out = ptr<<32 | len
//
// # Calls into the host
//
// The guest imports the host functions of module "wsbind". Each takes one
// request buffer (address, length: two i32) and returns an i64 packing a
// Status in the high 32 bits and a result length in the low 32 (PackResult).
// When the result is not empty the host has already placed it in a buffer
// it obtained by calling the guest's wsbind_alloc, so one result costs one
// call: the guest finds it where its allocator put it. The only exception
// is FuncNow, which takes nothing and returns Unix nanoseconds as an i64.
//
// Worked example, store_get(Part{Stream: "questions"}, "q1") answering an
// item of version 2, in no scope, whose data is {"id":"q1"}:
//
//	request  09 00 00 00 'q' 'u' 'e' 's' 't' 'i' 'o' 'n' 's'    Part.Stream (String)
//	         00 00 00 00                                        Part.Scope (String, "")
//	         00                                                 Part.All (Bool)
//	         02 00 00 00 'q' '1'                                id (String)
//	returns  PackResult(OK, 33) = 0x00000000_00000021
//	result   02 00 00 00 'q' '1'                                Item.ID (String)
//	(33 B)   00 00 00 00                                        Item.Scope (String, "")
//	         02 00 00 00 00 00 00 00                            Item.Version (U64)
//	         0b 00 00 00 '{' '"' 'i' 'd' '"' ':' '"' 'q' '1' '"' '}'   Item.Data (Bytes)
//
// and for an id that is not stored, PackResult(NotFound, 0) = 0x00000001_00000000
// with no result buffer. A scoped binding's call names its scope: alice's
// note n1 is Part{Stream: "notes", Scope: "alice"}, whose Scope is
// 05 00 00 00 'a' 'l' 'i' 'c' 'e'. store_delete takes the same request as
// store_get and then the version it must find, a U64: 02 00 00 00 00 00
// 00 00 deletes only version 2 (Conflict otherwise), and AnyVersion,
// ff ff ff ff ff ff ff ff, deletes whatever is stored.
//
// Integers are little-endian; a string or byte slice is a u32 length then
// its bytes (Writer and Reader). Addresses and lengths are i32 on the wire:
// a host reading them from 64-bit slots must cut each with uint32(x), since
// the top half is not guaranteed to be zero.
package abi

// Module is the import module name of every host function.
const Module = "wsbind"

// Guest exports.
const (
	// ExportAlloc (size i32) → i32 returns a guest buffer of size bytes,
	// alive until the guest's next entry point or host call returns.
	ExportAlloc = "wsbind_alloc"
	// ExportRoute (Message) → reply frame. The route function.
	ExportRoute = "wsbind_route"
	// ExportFanout (Change) → Outcome. The streamfanout function, one
	// stream record at a time.
	ExportFanout = "wsbind_fanout"
	// ExportConnect (ConnEvent) → Outcome. The connect function, for
	// $connect and $disconnect.
	ExportConnect = "wsbind_connect"
	// ExportDescribe (nothing) → JSON {"streams": [{"stream", "model",
	// "page_size", "fields": [{"name", "type", ...}], "actions": [{"name",
	// "detail", "custom"}]}]} (guest.Bindings): the bindings a route guest
	// serves, for tools (the emulator's debugger page, the AsyncAPI
	// document). Guests without bindings describe none.
	ExportDescribe = "wsbind_describe"
)

// Func names a host function. The numbers index Funcs and never change.
type Func uint8

// Host functions. Each line says the request and the result. A Part
// (Writer.Part) names the objects a store call reaches; Subscription,
// Item and User are encoded as messages.go says.
const (
	FuncStoreGet     Func = iota // Part, id → Item; NotFound
	FuncStoreCreate              // Part, Item → ; Exists
	FuncStoreReplace             // Part, Item → version (U64); NotFound, Conflict
	FuncStoreDelete              // Part, id, version (U64, AnyVersion below) → Item (the old one); NotFound, Conflict
	FuncStoreList                // Part, after (String, "" for the start), offset (U64), limit (U64) → count (U64), Items
	FuncStoreCount               // Part → count (U64)
	FuncSubscribe                // Subscription →
	FuncSubscribers              // count (U64), topics (String) → count (U64), Subscriptions (each with its Topic)
	FuncPost                     // frame, count (U64), conn ids → count (U64), Gone conn ids
	FuncLog                      // level (U64), message →
	FuncConnPut                  // ConnEvent →
	FuncConnDrop                 // conn id →
	FuncNow                      // () → Unix nanoseconds, returned directly
	FuncUnsubscribe              // Subscription → ; removes its Topic, ConnID and Filter, whatever its User
	FuncClaim                    // key (String), Claim, now (U64 Unix ms) → Claim (the stored one when not Fresh)
	FuncSettle                   // key (String), reply present (Bool), reply (Bytes, when present) →
	FuncHistory                  // Part, from (U64 Unix ms), limit (U64) → count (U64), Changes
	numFuncs
)

// AnyVersion is FuncStoreDelete's version for an unconditional delete:
// backend.AnyVersion (-1) as a U64, two's complement, so int64(U64) reads
// it back as -1. Every other version is a stored one, 0 or more.
const AnyVersion = ^uint64(0)

// Funcs are the import names, indexed by Func.
var Funcs = [numFuncs]string{
	FuncStoreGet:     "store_get",
	FuncStoreCreate:  "store_create",
	FuncStoreReplace: "store_replace",
	FuncStoreDelete:  "store_delete",
	FuncStoreList:    "store_list",
	FuncStoreCount:   "store_count",
	FuncSubscribe:    "subscribe",
	FuncSubscribers:  "subscribers",
	FuncPost:         "post",
	FuncLog:          "log",
	FuncConnPut:      "conn_put",
	FuncConnDrop:     "conn_drop",
	FuncNow:          "now",
	FuncUnsubscribe:  "unsubscribe",
	FuncClaim:        "claim",
	FuncSettle:       "settle",
	FuncHistory:      "history",
}

// String is the import name.
func (f Func) String() string {
	if f < numFuncs {
		return Funcs[f]
	}
	return "unknown"
}

// Status is a host function's outcome. The numbers never change.
type Status uint32

const (
	OK       Status = 0
	NotFound Status = 1 // no such item
	Exists   Status = 2 // create found the id taken
	Conflict Status = 3 // replace or a versioned delete found another version
	Failed   Status = 4 // the call failed; the result is the message
	BadCall  Status = 5 // the request could not be decoded
)

// Log levels for FuncLog.
const (
	LevelInfo  = 0
	LevelError = 1
)

// PackResult packs a host function's status and result length.
func PackResult(s Status, n uint32) uint64 { return uint64(s)<<32 | uint64(n) }

// UnpackResult splits what PackResult packed.
func UnpackResult(v uint64) (Status, uint32) { return Status(v >> 32), uint32(v) }

// PackPtr packs a guest buffer's address and length.
func PackPtr(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// UnpackPtr splits what PackPtr packed.
func UnpackPtr(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }
