package devstack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a child process the stack started (a worker, in the demo and
// the fault suite). It runs in its own process group, so a Ctrl-C reaches the
// parent only, and it is killed if the parent dies (Pdeathsig).
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the Wait error, valid after done is closed
}

// StartProcess starts cmd as a managed child.
func StartProcess(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Memory is the child's resident set size now and at its peak, in bytes,
// read from /proc (VmRSS and VmHWM). The peak is the child's own: rusage's
// ru_maxrss carries the parent's size across fork and exec.
func (p *Process) Memory() (rss, peak int64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, 0, fmt.Errorf("memory of pid %d: %w", p.Pid(), err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, err = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			peak, err = strconv.ParseInt(f[1], 10, 64)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("memory of pid %d: %s %w", p.Pid(), f[0], err)
		}
	}
	return rss << 10, peak << 10, nil // KiB
}

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the child.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", p.Pid(), err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to grace for the child to exit, then kills
// it. It returns the exit code (-1 when killed by a signal).
func (p *Process) Stop(grace time.Duration) (int, error) {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return -1, err
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return -1, fmt.Errorf("pid %d did not exit within %v of SIGTERM; killed", p.Pid(), grace)
	}
	return p.ExitCode(), nil
}

// Kill ends the child with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// ExitCode is the child's exit status after it exited (-1 if killed by a
// signal, or still running).
func (p *Process) ExitCode() int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}
