package sandbox

import (
	"runtime"
	"sync"
)

// starterPool runs container starts on goroutines locked, for their whole
// life, to their own OS threads. libcontainer sets ParentDeathSignal on the
// init it forks, and the kernel ties that to the forking thread: a start
// from an ordinary goroutine whose thread later exits kills (or breaks)
// the container (trap 6). The Manager owns the pool; close ends it.
type starterPool struct {
	reqs chan func()
	wg   sync.WaitGroup
}

func newStarterPool(n int) *starterPool {
	p := &starterPool{reqs: make(chan func())}
	p.wg.Add(n)
	for range n {
		go p.loop()
	}
	return p
}

func (p *starterPool) loop() {
	defer p.wg.Done()
	// Never unlocked: the thread ends with the goroutine, after every
	// container it started is gone (close runs after all runs ended).
	runtime.LockOSThread()
	for fn := range p.reqs {
		fn()
	}
}

// do runs fn on a starter thread and waits for it. It must not be called
// after close (the Manager guarantees that).
func (p *starterPool) do(fn func()) {
	done := make(chan struct{})
	p.reqs <- func() {
		defer close(done)
		fn()
	}
	<-done
}

func (p *starterPool) close() {
	close(p.reqs)
	p.wg.Wait()
}
