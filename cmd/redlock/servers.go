package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/quorumlock/redsync"
	redsyncredis "github.com/quorumlock/redsync/redis"
	"github.com/quorumlock/redsync/redis/goredis"
)

// The environment variables redlock reads.
const (
	envAddrs    = "REDLOCK_ADDRS"
	envPassword = "REDLOCK_PASSWORD"
)

// dialTimeout bounds connecting to one server.
const dialTimeout = 2 * time.Second

// serverFlags are the flags that say which servers to talk to and how.
type serverFlags struct {
	addrs  string
	user   string
	db     int
	tls    bool
	cacert string
	cert   string
	key    string
}

// register adds the flags to fs.
func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addrs, "addrs", "", "`host:port` of each Redis server, comma-separated, one per independent server (default $"+envAddrs+")")
	fs.StringVar(&f.user, "user", "", "the ACL `user` to log in as; the password is read from $"+envPassword)
	fs.IntVar(&f.db, "db", 0, "the database `number` on every server")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS")
	fs.StringVar(&f.cacert, "cacert", "", "with -tls, the CA certificates (PEM `file`) that sign the servers' certificates (default: the system's)")
	fs.StringVar(&f.cert, "cert", "", "with -tls, the client certificate (PEM `file`), with -key")
	fs.StringVar(&f.key, "key", "", "with -tls, the client certificate's private key (PEM `file`)")
}

// servers are one go-redis client per server, and a Redsync over them.
type servers struct {
	addrs   []string
	clients []*redis.Client
	rs      *redsync.Redsync
}

// open checks the flags and makes the clients; it connects to nothing.
// An address given twice is bad usage, one server counting as two votes,
// unless duplicates is set (check, which reports it).
func (f *serverFlags) open(duplicates bool) (*servers, error) {
	list := f.addrs
	if list == "" {
		list = os.Getenv(envAddrs)
	}
	if strings.TrimSpace(list) == "" {
		return nil, usageErrorf("no servers: give -addrs host:port,host:port,... or set %s", envAddrs)
	}
	var addrs []string
	seen := map[string]bool{}
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, usageErrorf("-addrs: %q is not host:port (%v)", a, err)
		}
		if seen[a] && !duplicates {
			return nil, usageErrorf("-addrs: %s is given twice, and one server would count as two votes of the quorum (redlock check also finds a server given under two names)", a)
		}
		seen[a] = true
		addrs = append(addrs, a)
	}
	if f.db < 0 {
		return nil, usageErrorf("-db: the database number must be 0 or more, got %d", f.db)
	}
	tlsConfig, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &servers{addrs: addrs}
	pools := make([]redsyncredis.Pool, len(addrs))
	for i, addr := range addrs {
		opts := &redis.Options{
			Addr:     addr,
			Username: f.user,
			Password: os.Getenv(envPassword),
			DB:       f.db,
			// The lock gives each server a deadline of its own; the
			// client must follow it, and not retry past it.
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			DialTimeout:           dialTimeout,
			DisableIdentity:       true,
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
		}
		if tlsConfig != nil {
			opts.TLSConfig = tlsConfig.Clone()
			if host, _, _ := net.SplitHostPort(addr); net.ParseIP(host) == nil {
				opts.TLSConfig.ServerName = host
			}
		}
		client := redis.NewClient(opts)
		s.clients = append(s.clients, client)
		pools[i] = goredis.NewPool(client)
	}
	s.rs = redsync.New(pools...)
	return s, nil
}

// tlsConfig returns the TLS configuration of the flags, or nil without
// -tls.
func (f *serverFlags) tlsConfig() (*tls.Config, error) {
	if !f.tls {
		if f.cacert != "" || f.cert != "" || f.key != "" {
			return nil, usageErrorf("-cacert, -cert and -key need -tls")
		}
		return nil, nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.cacert != "" {
		pem, err := os.ReadFile(f.cacert)
		if err != nil {
			return nil, usageErrorf("-cacert: %v", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("-cacert: %s holds no PEM certificate", f.cacert)
		}
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usageErrorf("-cert and -key go together: give both or neither")
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, usageErrorf("-cert, -key: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// quorum is how many servers make a majority.
func (s *servers) quorum() int {
	return len(s.addrs)/2 + 1
}

// close waits for the lock's requests still on their way, then closes the
// clients.
func (s *servers) close() {
	s.rs.Wait()
	for _, c := range s.clients {
		_ = c.Close()
	}
}

// reach pings every server and returns an error with exitUnreachable when
// fewer than a quorum answer; a server that does not answer while a quorum
// does is reported on stderr (unless quiet), and the lock goes on without
// it.
func (s *servers) reach(ctx context.Context, stderr io.Writer, quiet bool) error {
	errs := s.ping(ctx)
	var lines []string
	for i, err := range errs {
		if err != nil {
			lines = append(lines, s.describe(i, err))
		}
	}
	if len(s.addrs)-len(lines) < s.quorum() {
		return exitf(exitUnreachable, "%d of %d servers answered, a quorum is %d:\n  %s",
			len(s.addrs)-len(lines), len(s.addrs), s.quorum(), strings.Join(lines, "\n  "))
	}
	if !quiet {
		for _, l := range lines {
			fmt.Fprintf(stderr, "redlock: warning: %s\n", l)
		}
	}
	return nil
}

// ping sends PING to every server at once; errs[i] is server i's error.
func (s *servers) ping(ctx context.Context) []error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout+time.Second)
	defer cancel()
	errs := make([]error, len(s.clients))
	var wg sync.WaitGroup
	for i, c := range s.clients {
		wg.Go(func() { errs[i] = c.Ping(ctx).Err() })
	}
	wg.Wait()
	return errs
}

// describe says what went wrong with server i, and what to do about it.
func (s *servers) describe(i int, err error) string {
	return fmt.Sprintf("server #%d (%s): %s", i, s.addrs[i], advice(err))
}

// aclAdvice says what an ACL user needs for the lock's commands, those
// its scripts call included.
const aclAdvice = "it needs +@read +@write +@scripting +@pubsub +ping +time (or +@all), on the lock's keys and channels (~* &*)"

// advice is err with what to do about it, for the errors a user can fix.
func advice(err error) string {
	msg := err.Error()
	code, _, _ := strings.Cut(msg, " ")
	var netErr net.Error
	switch {
	case code == "NOAUTH":
		return msg + ": the server needs a password: set " + envPassword + " (and -user for an ACL user)"
	case code == "WRONGPASS":
		return msg + ": check -user and " + envPassword
	case code == "NOPERM" || strings.Contains(msg, "can't run this command"):
		return msg + ": the ACL user lacks a command the lock sends; " + aclAdvice
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return msg + ": unreachable; check -addrs (or " + envAddrs + ") and that the server is up"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return msg + ": unreachable; check -addrs (or " + envAddrs + ") and that the server is up"
	}
	return msg
}
