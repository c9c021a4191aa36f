// rpcping: a Go client for consul-sec's RPC interop test. It dials the RPC
// port as Consul's agents do (byte 0x03, a crypto/tls handshake, byte 0x00)
// and calls Status.Ping and unknown methods through hashicorp's msgpack-RPC
// codec (github.com/hashicorp/net-rpc-msgpackrpc). Written for this project.
//
// Usage: rpcping -addr 127.0.0.1:8300 -ca ca.pem -cert c.pem -key c-key.pem \
//                -server-name server.dc1.consul [-plain]
// Prints one line per check and exits 1 on the first failure.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "", "server address")
	caFile := flag.String("ca", "", "CA PEM")
	certFile := flag.String("cert", "", "client certificate PEM")
	keyFile := flag.String("key", "", "client key PEM")
	serverName := flag.String("server-name", "server.dc1.consul", "expected server name")
	plain := flag.Bool("plain", false, "dial plaintext (0x00) instead of 0x03 + TLS")
	flag.Parse()

	conn, err := net.DialTimeout("tcp", *addr, 10*time.Second)
	if err != nil {
		fail("dial: %v", err)
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	var stream net.Conn = conn
	if !*plain {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail("read ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("no CA certificate in %s", *caFile)
		}
		cfg := &tls.Config{RootCAs: pool, ServerName: *serverName, MinVersion: tls.VersionTLS12}
		if *certFile != "" {
			pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
			if err != nil {
				fail("load client cert: %v", err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		if _, err := conn.Write([]byte{0x03}); err != nil {
			fail("write 0x03: %v", err)
		}
		tlsConn := tls.Client(conn, cfg)
		if err := tlsConn.Handshake(); err != nil {
			fail("handshake: %v", err)
		}
		state := tlsConn.ConnectionState()
		fmt.Printf("OK handshake version=%x peer=%s\n", state.Version, state.PeerCertificates[0].Subject.CommonName)
		stream = tlsConn
	}
	if _, err := stream.Write([]byte{0x00}); err != nil {
		fail("write 0x00: %v", err)
	}
	codec := msgpackrpc.NewClientCodec(stream)
	var out struct{}
	for i := 0; i < 3; i++ {
		if err := msgpackrpc.CallWithCodec(codec, "Status.Ping", struct{}{}, &out); err != nil {
			fail("Status.Ping: %v", err)
		}
	}
	fmt.Println("OK Status.Ping x3")
	err = msgpackrpc.CallWithCodec(codec, "Nope.Method", struct{}{}, &out)
	if err == nil {
		fail("Nope.Method: no error")
	}
	fmt.Printf("OK Nope.Method error=%q\n", err.Error())
	if err := msgpackrpc.CallWithCodec(codec, "Status.Ping", struct{}{}, &out); err != nil {
		fail("Status.Ping after error: %v", err)
	}
	fmt.Println("OK Status.Ping after error")
}
