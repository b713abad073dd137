package dynamodblocal

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// The data directory (Server.Open) keeps the items of the tables named
// durable across restarts: a snapshot of them, and an append-only log
// of every write since, replayed over the snapshot at the next Open and
// then folded into a new snapshot.
//
// Both files are a header line, then frames: the payload's length (4
// bytes, big-endian), its CRC-32C (4 bytes), the payload, a JSON array
// of the changes one request made ({"t":table,"i":item} for an item
// written, {"t":table,"k":key} for one deleted): a transaction is one
// frame, so that it survives whole or not at all. Each frame is written
// with one write(2) before the request is answered, so nothing
// acknowledged is lost when the process dies (kill -9 included); the
// file is fsynced once a second and on Close, so that an operating
// system crash or a power cut loses at most the last second.
const (
	snapshotFile = "dynamodb.snapshot"
	logFile      = "dynamodb.log"
	fileHeader   = "wsbind emulator DynamoDB data, format 1\n"
	frameHeader  = 8
	// maxFrame bounds a frame's length: a larger one is damage, not a
	// record (a transaction of 100 items of 400 KB is about 40 MB).
	maxFrame = 64 << 20
	// compactAt is the log size past which the log is folded into a new
	// snapshot, if the log is also twice the snapshot's size.
	compactAt = 64 << 20
	// syncEvery is how often written frames are fsynced.
	syncEvery = time.Second
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logChange is one change as the data files hold it.
type logChange struct {
	Table string `json:"t"`
	Item  item   `json:"i,omitempty"`
	Key   item   `json:"k,omitempty"`
}

// Restored is what Open found in the data directory.
type Restored struct {
	// Items is the number of items restored, in all durable tables.
	Items int
	// Frames is the number of log frames replayed over the snapshot.
	Frames int
	// Dropped is the size of the log's tail that was not a whole,
	// intact frame (a write cut short by a crash, or damage), dropped
	// from DroppedAt on. The log as found is kept as KeptAs.
	Dropped, DroppedAt int64
	KeptAs             string
	// Unknown counts changes to tables that no longer exist, skipped.
	Unknown int
}

// dataLog is the open data directory.
type dataLog struct {
	dir     string
	durable map[string]bool
	f       *os.File
	size    int64 // of the log file
	snap    int64 // of the snapshot
	frame   []byte

	mu    sync.Mutex // guards dirty and f's syncing against Close
	dirty bool
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// Open makes the Server keep the items of the tables named durable in
// dir (created if need be): what an earlier run left there is loaded
// into those tables, which must exist (created as before), and every
// write to them from now on is logged before it is answered. The other
// tables start empty at every run. A log that ends in a torn or damaged
// frame keeps every frame before it (Restored says what was dropped); a
// damaged snapshot, a directory that cannot be written, or a file of
// another format is an error. Open is called once, before the Server
// takes writes; Close ends it.
func (s *Server) Open(dir string, durable ...string) (Restored, error) {
	var r Restored
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, fmt.Errorf("data directory %s: %w", dir, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil {
		return r, errors.New("dynamodblocal: Open called twice")
	}
	d := &dataLog{dir: dir, durable: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, name := range durable {
		d.durable[name] = true
	}
	apply := func(chs []logChange) {
		for _, c := range chs {
			t, ok := s.tables[c.Table]
			if !ok || !d.durable[c.Table] {
				r.Unknown++
				continue
			}
			it := c.Item
			if it == nil {
				it = c.Key
			}
			key, err := keyString(t, it)
			if err != nil {
				r.Unknown++
				continue
			}
			t.put(key, c.Item) // nil: deleted
		}
	}

	snapPath := filepath.Join(dir, snapshotFile)
	if f, err := os.Open(snapPath); err == nil {
		_, bad, err := readFrames(f, apply)
		f.Close()
		if err == nil && bad != nil {
			err = bad
		}
		if err != nil {
			return r, fmt.Errorf("data directory %s: %s is damaged (%v); move it away to start without it", dir, snapshotFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("data directory %s: %w", dir, err)
	}

	logPath := filepath.Join(dir, logFile)
	if f, err := os.Open(logPath); err == nil {
		st, _ := f.Stat()
		good, bad, err := readFrames(f, func(chs []logChange) { r.Frames++; apply(chs) })
		f.Close()
		if err != nil {
			return r, fmt.Errorf("data directory %s: %s: %w", dir, logFile, err)
		}
		if bad != nil && st != nil {
			r.Dropped, r.DroppedAt = st.Size()-good, good
			r.KeptAs = logPath + ".damaged-" + time.Now().UTC().Format("20060102T150405")
			if err := os.Rename(logPath, r.KeptAs); err != nil {
				return r, fmt.Errorf("data directory %s: %w", dir, err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("data directory %s: %w", dir, err)
	}
	for name := range d.durable {
		if t, ok := s.tables[name]; ok {
			r.Items += len(t.items)
		}
	}

	// Everything now in the tables becomes the snapshot, and the log
	// starts empty.
	s.data = d
	if err := s.compact(); err != nil {
		s.data = nil
		return r, err
	}
	go d.syncLoop()
	return r, nil
}

// readFrames reads a data file's header and then its frames, calling fn
// with each frame's changes. good is the offset after the last intact
// frame; bad says why reading stopped before the end (a torn or damaged
// frame), nil at a clean end. err is a file that is not a data file.
func readFrames(f io.Reader, fn func([]logChange)) (good int64, bad, err error) {
	br := bufio.NewReaderSize(f, 1<<20)
	head := make([]byte, len(fileHeader))
	if n, err := io.ReadFull(br, head); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return 0, nil, nil // an empty file: created, nothing written
		}
		return 0, nil, fmt.Errorf("not an emulator data file (%d bytes)", n)
	}
	if string(head) != fileHeader {
		return 0, nil, fmt.Errorf("not an emulator data file of this format (it begins %q)", head)
	}
	good = int64(len(fileHeader))
	var hdr [frameHeader]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return good, nil, nil
			}
			return good, fmt.Errorf("a frame's header is cut short at offset %d", good), nil
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n > maxFrame {
			return good, fmt.Errorf("a frame at offset %d claims %d bytes", good, n), nil
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			return good, fmt.Errorf("a frame at offset %d is cut short", good), nil
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			return good, fmt.Errorf("a frame at offset %d fails its checksum", good), nil
		}
		var chs []logChange
		if err := json.Unmarshal(payload, &chs); err != nil {
			return good, fmt.Errorf("a frame at offset %d does not decode: %v", good, err), nil
		}
		fn(chs)
		good += frameHeader + int64(n)
	}
}

// appendFrame adds a frame of chs to b.
func appendFrame(b []byte, chs []logChange) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, frameHeader)...)
	payload, err := json.Marshal(chs)
	if err != nil {
		return b[:start], err
	}
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b, nil
}

// commit makes the changes of one request: logged first when a table is
// durable (so a change that cannot be logged is not made, and the request
// fails), then in the tables. The caller holds s.mu alone.
func (s *Server) commit(chs ...change) error {
	if d := s.data; d != nil {
		var lcs []logChange
		for _, ch := range chs {
			if ch.t == nil || !d.durable[ch.t.name] {
				continue
			}
			lc := logChange{Table: ch.t.name, Item: ch.new}
			if ch.new == nil {
				if ch.old == nil {
					continue // a delete of nothing
				}
				lc.Key = keyOf(ch.t, ch.old)
			}
			lcs = append(lcs, lc)
		}
		if len(lcs) > 0 {
			if err := d.write(lcs); err != nil {
				return &apiError{status: 500, code: "InternalServerError", msg: "the emulator could not keep the write in its data directory: " + err.Error()}
			}
			if d.size > compactAt && d.size > 2*d.snap {
				if err := s.compact(); err != nil {
					return &apiError{status: 500, code: "InternalServerError", msg: "the write is kept, but the emulator could not compact its data directory: " + err.Error()}
				}
			}
		}
	}
	for _, ch := range chs {
		if ch.t != nil {
			ch.t.put(ch.key, ch.new)
		}
	}
	return nil
}

// write appends one frame to the log with one write(2). A write that
// fails (a full disk) is cut off again, so that the log ends in whole
// frames.
func (d *dataLog) write(chs []logChange) error {
	var err error
	if d.frame, err = appendFrame(d.frame[:0], chs); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return errors.New("the data directory is closed")
	}
	if _, err := d.f.Write(d.frame); err != nil {
		if terr := d.f.Truncate(d.size); terr != nil {
			err = fmt.Errorf("%w (and cutting the log back failed too: %v)", err, terr)
		}
		_, _ = d.f.Seek(d.size, io.SeekStart)
		return err
	}
	d.size += int64(len(d.frame))
	d.dirty = true
	if cap(d.frame) > 1<<20 {
		d.frame = nil // a large transaction's buffer is not kept
	}
	return nil
}

// compact writes every item of the durable tables into a new snapshot
// (written aside, fsynced, then renamed over the old one) and starts an
// empty log. A crash in between leaves the old snapshot and log, or the
// new snapshot and the old log, whose replay over it changes nothing.
// The caller holds s.mu alone.
func (s *Server) compact() error {
	d := s.data
	tmp := filepath.Join(d.dir, snapshotFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", d.dir, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("data directory %s: %w", d.dir, err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(fileHeader)
	var buf []byte
	size := int64(len(fileHeader))
	for _, name := range slices.Sorted(maps.Keys(d.durable)) {
		t, ok := s.tables[name]
		if !ok {
			continue
		}
		keys := slices.Sorted(maps.Keys(t.items))
		for len(keys) > 0 {
			n := min(len(keys), 100)
			chs := make([]logChange, n)
			for i, k := range keys[:n] {
				chs[i] = logChange{Table: name, Item: t.items[k]}
			}
			keys = keys[n:]
			if buf, err = appendFrame(buf[:0], chs); err != nil {
				return fail(err)
			}
			if _, err := w.Write(buf); err != nil {
				return fail(err)
			}
			size += int64(len(buf))
		}
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data directory %s: %w", d.dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, snapshotFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("data directory %s: %w", d.dir, err)
	}
	syncDir(d.dir)
	d.snap = size

	lf, err := os.OpenFile(filepath.Join(d.dir, logFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", d.dir, err)
	}
	if _, err := lf.WriteString(fileHeader); err != nil {
		lf.Close()
		return fmt.Errorf("data directory %s: %w", d.dir, err)
	}
	d.mu.Lock()
	old := d.f
	d.f, d.size, d.dirty = lf, int64(len(fileHeader)), true
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// syncDir fsyncs a directory, so that a rename in it is durable. Where
// directories cannot be synced it does nothing.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// syncLoop fsyncs the log once a second when it was written to.
func (d *dataLog) syncLoop() {
	defer close(d.done)
	tick := time.NewTicker(syncEvery)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
			d.sync()
		}
	}
}

func (d *dataLog) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dirty || d.f == nil {
		return nil
	}
	d.dirty = false
	return d.f.Sync()
}

// Close fsyncs and closes the data directory Open opened, if any. The
// Server answers no write to a durable table after it.
func (s *Server) Close() error {
	s.mu.Lock()
	d := s.data
	s.mu.Unlock()
	if d == nil {
		return nil
	}
	var err error
	d.once.Do(func() {
		close(d.stop)
		<-d.done
		err = d.close()
	})
	return err
}

func (d *dataLog) close() error {
	err := d.sync()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		err = errors.Join(err, d.f.Close())
		d.f = nil
	}
	return err
}
