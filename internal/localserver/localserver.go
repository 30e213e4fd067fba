// Package localserver starts and stops real redis-server / valkey-server and
// sentinel processes on free 127.0.0.1 ports. It is shared by the test
// harness (internal/servertest) and by the CLI's throwaway server; it never
// binds anything but the loopback address.
//
// Servers run without persistence, in a directory of the caller's choosing,
// and log to a file in that directory so a failing test can show the tail.
package localserver

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is the only address servers started here listen on.
const Host = "127.0.0.1"

// ErrMissingBinary is returned when neither valkey nor redis binaries are on PATH.
var ErrMissingBinary = errors.New("localserver: server binary not found")

// InstallHint says what to install when a binary is missing.
const InstallHint = "install redis-server and redis-sentinel (Debian: apt-get install redis-server redis-sentinel) or valkey-server"

// ServerBinary returns the path of valkey-server, or redis-server if valkey is
// not installed. The KV_SERVER_BIN environment variable overrides both.
func ServerBinary() (string, error) {
	return findBinary("KV_SERVER_BIN", "valkey-server", "redis-server")
}

// SentinelBinary returns the path of valkey-sentinel or redis-sentinel; when
// neither exists but a server binary does, the server binary is returned and
// started with --sentinel.
func SentinelBinary() (path string, useServerFlag bool, err error) {
	if p, err := findBinary("KV_SENTINEL_BIN", "valkey-sentinel", "redis-sentinel"); err == nil {
		return p, false, nil
	}
	p, err := ServerBinary()
	return p, true, err
}

func findBinary(env string, names ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v", ErrMissingBinary, env, p, err)
		}
		return p, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: none of %s on PATH; %s", ErrMissingBinary, strings.Join(names, ", "), InstallHint)
}

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// FreePort returns a loopback TCP port that is free now and, when withBus is
// true, whose cluster bus port (port+10000) is free too. Ports handed out by
// this process are not handed out again.
func FreePort(withBus bool) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if usedPorts[port] {
			continue
		}
		if withBus {
			if port+10000 > 65535 {
				continue
			}
			lb, err := net.Listen("tcp", net.JoinHostPort(Host, strconv.Itoa(port+10000)))
			if err != nil {
				continue
			}
			lb.Close()
		}
		usedPorts[port] = true
		return port, nil
	}
	return 0, errors.New("localserver: no free loopback port found")
}

// TLSFiles names the PEM files a TLS server is started with.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
	// AuthClients requires clients to present a certificate signed by CAFile (mTLS).
	AuthClients bool
}

// Options describe one server process.
type Options struct {
	// Dir holds the log and config files; it must exist.
	Dir string
	// Name labels the process in logs and file names (e.g. "primary", "sentinel-1").
	Name string
	// Port is the port to listen on; 0 picks a free one.
	Port int
	// TLS, when set, makes the server listen with TLS only on Port.
	TLS *TLSFiles
	// PingTLS is the client TLS configuration used to check readiness of a TLS server.
	PingTLS *tls.Config
	// Cluster enables cluster mode (its bus port is Port+10000).
	Cluster bool
	// Sentinel runs a sentinel with the given configuration lines (port and bind are added).
	Sentinel []string
	// Args are extra command-line arguments, e.g. "--replicaof", "127.0.0.1 6380".
	Args []string
	// ReadyTimeout bounds the wait for the first PONG; default 10s.
	ReadyTimeout time.Duration
}

// Server is a running (or stopped) server process.
type Server struct {
	opts    Options
	bin     string
	args    []string
	logFile string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches a server and waits until it answers PING.
func Start(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("localserver: Options.Dir is required")
	}
	if opts.Name == "" {
		opts.Name = "server"
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	autoPort := opts.Port == 0
	for attempt := 1; ; attempt++ {
		if autoPort {
			p, err := FreePort(opts.Cluster)
			if err != nil {
				return nil, err
			}
			opts.Port = p
		}
		s := &Server{opts: opts, logFile: filepath.Join(opts.Dir, opts.Name+".log")}
		var err error
		if len(opts.Sentinel) > 0 {
			err = s.prepareSentinel()
		} else {
			err = s.prepareServer()
		}
		if err != nil {
			return nil, err
		}
		err = s.launch()
		if err == nil {
			return s, nil
		}
		// Another test may have taken the free port between the check and
		// the bind: pick another one.
		if !autoPort || attempt == 3 || !strings.Contains(err.Error(), "in use") {
			return nil, err
		}
	}
}

func (s *Server) prepareServer() error {
	bin, err := ServerBinary()
	if err != nil {
		return err
	}
	s.bin = bin
	o := s.opts
	port := strconv.Itoa(o.Port)
	args := []string{
		"--bind", Host, "--protected-mode", "no",
		"--save", "", "--appendonly", "no",
		"--dir", o.Dir, "--logfile", s.logFile,
		"--dbfilename", o.Name + ".rdb",
	}
	if o.TLS != nil {
		auth := "no"
		if o.TLS.AuthClients {
			auth = "yes"
		}
		args = append(args, "--port", "0", "--tls-port", port,
			"--tls-cert-file", o.TLS.CertFile, "--tls-key-file", o.TLS.KeyFile,
			"--tls-ca-cert-file", o.TLS.CAFile, "--tls-auth-clients", auth,
			"--tls-replication", "yes", "--tls-cluster", "yes")
	} else {
		args = append(args, "--port", port)
	}
	if o.Cluster {
		args = append(args, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(o.Dir, o.Name+"-nodes.conf"),
			"--cluster-node-timeout", "15000", "--cluster-require-full-coverage", "no",
			"--cluster-announce-ip", Host) // a node learns its own address only once a peer connects: announce it
	}
	s.args = append(args, o.Args...)
	return nil
}

func (s *Server) prepareSentinel() error {
	bin, serverFlag, err := SentinelBinary()
	if err != nil {
		return err
	}
	s.bin = bin
	o := s.opts
	conf := filepath.Join(o.Dir, o.Name+".conf")
	lines := []string{"bind " + Host, "protected-mode no", "dir " + o.Dir, "logfile " + s.logFile}
	if o.TLS != nil {
		// TLS for clients and for the sentinel's own connections to the
		// monitored servers (tls-replication).
		auth := "no"
		if o.TLS.AuthClients {
			auth = "yes"
		}
		lines = append(lines, "port 0", "tls-port "+strconv.Itoa(o.Port),
			"tls-cert-file "+o.TLS.CertFile, "tls-key-file "+o.TLS.KeyFile, "tls-ca-cert-file "+o.TLS.CAFile,
			"tls-auth-clients "+auth, "tls-replication yes")
	} else {
		lines = append(lines, "port "+strconv.Itoa(o.Port))
	}
	lines = append(lines, o.Sentinel...)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	s.args = []string{conf}
	if serverFlag {
		s.args = append(s.args, "--sentinel")
	}
	s.args = append(s.args, o.Args...)
	return nil
}

func (s *Server) launch() error {
	s.mu.Lock()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.opts.Dir
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	setProcAttrs(cmd)
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("localserver: start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() { _ = cmd.Wait(); close(done) }()

	deadline := time.Now().Add(s.opts.ReadyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("localserver: %s exited during start-up: %s\n%s%s", s.opts.Name, cmd.ProcessState, stderr.String(), s.LogTail(20))
		default:
		}
		_, err := Do(s.Addr(), s.opts.PingTLS, time.Second, "PING")
		var reply ErrReply
		if err == nil || errors.As(err, &reply) && strings.HasPrefix(string(reply), "NOAUTH") {
			return nil // answering (a NOAUTH reply: the server wants a password)
		} else {
			lastErr = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("localserver: %s not ready after %s: %v\n%s", s.opts.Name, s.opts.ReadyTimeout, lastErr, s.LogTail(20))
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort(Host, strconv.Itoa(s.opts.Port)) }

// Port is the server's port.
func (s *Server) Port() int { return s.opts.Port }

// Name is the label given in Options.
func (s *Server) Name() string { return s.opts.Name }

// LogFile is the path of the server's log file.
func (s *Server) LogFile() string { return s.logFile }

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Kill stops the process with SIGKILL (a crash) and waits for it to exit.
func (s *Server) Kill() { s.signal(true) }

// Freeze suspends the process (SIGSTOP): it keeps its sockets but answers
// nothing, as a hung or partitioned server does. Thaw resumes it.
func (s *Server) Freeze() error { return s.sendSignal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (s *Server) Thaw() error { return s.sendSignal(syscall.SIGCONT) }

func (s *Server) sendSignal(sig os.Signal) error {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return errors.New("localserver: no process")
	}
	return cmd.Process.Signal(sig)
}

// Stop asks the process to exit (SIGTERM), escalating to SIGKILL after 5s.
func (s *Server) Stop() { s.signal(false) }

func (s *Server) signal(kill bool) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	if kill {
		_ = cmd.Process.Kill()
	} else {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen server cannot act on SIGTERM
		_ = cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart starts a stopped server again on the same port with the same options.
func (s *Server) Restart() error {
	if s.Running() {
		return errors.New("localserver: restart of a running server")
	}
	return s.launch()
}

// Do sends one command to this server (see the package-level Do).
func (s *Server) Do(args ...string) (string, error) {
	return Do(s.Addr(), s.opts.PingTLS, 5*time.Second, args...)
}

// Calls returns how many times the server ran command (lower case, as
// INFO commandstats names it: "zrange", "client|tracking") since it
// started or its statistics were reset (CONFIG RESETSTAT); 0 if never.
func (s *Server) Calls(command string) (int, error) {
	stats, err := s.Do("INFO", "commandstats")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(stats, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+command+":calls="); ok {
			n, _, _ := strings.Cut(rest, ",")
			return strconv.Atoi(n)
		}
	}
	return 0, nil
}

// LogTail returns the last n lines of the server's log file.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
