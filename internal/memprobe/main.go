//go:build ignore

// Memprobe serves /echo-event on a runtime and writes a heap profile on SIGUSR1.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/wsmatrix/wsmatrix/api"
	"github.com/wsmatrix/wsmatrix/handlers"
	wsrt "github.com/wsmatrix/wsmatrix/runtime"
	_ "github.com/wsmatrix/wsmatrix/runtime/all"
)

func main() {
	r := api.NewRouter()
	r.Handle("/echo", handlers.Echo)
	r.Handle("/echo-event", handlers.EchoEvent)
	rt, err := wsrt.New(os.Args[1], r, api.Options{})
	if err != nil {
		panic(err)
	}
	a, err := rt.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(a.String(), os.Getpid())
	if len(os.Args) > 3 {
		pf, _ := os.Create(os.Args[3])
		pprof.StartCPUProfile(pf)
		go func() {
			time.Sleep(12 * time.Second)
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	<-ch
	runtime.GC()
	f, _ := os.Create(os.Args[2])
	pprof.WriteHeapProfile(f)
	f.Close()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "heapinuse %d heapalloc %d stackinuse %d sys %d goroutines %d\n", ms.HeapInuse, ms.HeapAlloc, ms.StackInuse, ms.Sys, runtime.NumGoroutine())
	select {}
}
