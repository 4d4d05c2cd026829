package dhttest

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

func TestProbeHeap(t *testing.T) {
	base := heapAndStacks()
	tn, err := Start(context.Background(), 1000, Options{Memory: true})
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("heap %d KiB/node stacks %d KiB/node goroutines/node %.1f total %d", ms.HeapAlloc/1000/1024, ms.StackInuse/1000/1024, float64(runtime.NumGoroutine())/1000, (heapAndStacks()-base)/1000/1024)
	f, _ := os.Create("/tmp/dhtscale/heap.out")
	pprof.WriteHeapProfile(f)
	f.Close()
	tn.Close()
}
