// Command stele-vcsim serves govmomi's vCenter simulator (VPX model) on a loopback port for
// Stele's end-to-end tests, plus a small control endpoint that arms task faults:
//
//	POST   /stele/faults  {"descriptionId":"VirtualMachine.powerOn","fault":"InvalidState","count":1}
//	GET    /stele/faults  -> {"faults":[...], "tasks":{descriptionId: count}} (armed faults with
//	                         remaining counts; every task created so far, by descriptionId)
//	DELETE /stele/faults  -> clears every armed fault and the task counts
//
// The next `count` tasks whose info.descriptionId matches fail with the named vim25 fault
// (info.state = error). An optional "entity" (a managed object id such as "vm-42") narrows the
// match to tasks on that object.
//
// Built offline against Debian's golang-github-vmware-govmomi-dev in GOPATH mode:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o stele-vcsim .
//
// On start it prints one JSON line to stdout: {"url":..., "sdk":..., "faults":..., "certPem":...}
// (certPem only with -tls: a fresh self-signed certificate for 127.0.0.1 that clients can trust).
// Credentials come from the environment (VCSIM_USERNAME, VCSIM_PASSWORD), never from argv.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// armedFault is one entry of the fault table.
type armedFault struct {
	DescriptionID string `json:"descriptionId"`
	Fault         string `json:"fault"`
	Count         int    `json:"count"`
	Entity        string `json:"entity,omitempty"`
	// Fired counts the tasks this entry has failed so far.
	Fired int `json:"fired"`
}

// faultTable is registered with the simulator's object registry; PutObject sees every new Task
// before it runs and swaps its Execute func for one returning the armed fault.
type faultTable struct {
	mu    sync.Mutex
	armed []*armedFault
	// seen counts every task created, by descriptionId (whether or not a fault fired).
	seen   map[string]int
	newErr func(name string) (types.BaseMethodFault, error)
}

func (f *faultTable) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "SteleFaultTable", Value: "stele-faults"}
}

func (f *faultTable) PutObject(obj mo.Reference) {
	task, ok := obj.(*simulator.Task)
	if !ok {
		return
	}
	entity := ""
	if task.Info.Entity != nil {
		entity = task.Info.Entity.Value
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[task.Info.DescriptionId]++
	for i, a := range f.armed {
		if a.DescriptionID != task.Info.DescriptionId || (a.Entity != "" && a.Entity != entity) {
			continue
		}
		fault, err := f.newErr(a.Fault)
		if err != nil { // validated when armed; keep the task intact if it ever happens
			return
		}
		fault.GetMethodFault().FaultMessage = []types.LocalizableMessage{{
			Key:     "stele.injectedFault",
			Message: fmt.Sprintf("%s injected by the Stele test peer", a.Fault),
		}}
		a.Count--
		a.Fired++
		if a.Count <= 0 {
			f.armed = append(f.armed[:i], f.armed[i+1:]...)
		}
		task.Execute = func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			return nil, fault
		}
		fmt.Fprintf(os.Stderr, "stele-vcsim: task %s (%s on %s) fails with %s\n",
			task.Self.Value, task.Info.DescriptionId, entity, a.Fault)
		return
	}
}

func (f *faultTable) UpdateObject(mo.Reference, []types.PropertyChange) {}
func (f *faultTable) RemoveObject(types.ManagedObjectReference)         {}

// newFault makes a zero-valued instance of the named vim25 fault type (e.g. "InvalidState").
func newFault(name string) (types.BaseMethodFault, error) {
	typ, ok := types.TypeFunc()(name)
	if !ok {
		return nil, fmt.Errorf("unknown vim25 type %q", name)
	}
	v, ok := reflect.New(typ).Interface().(types.BaseMethodFault)
	if !ok {
		return nil, fmt.Errorf("vim25 type %q is not a MethodFault", name)
	}
	return v, nil
}

// selfSignedCert makes a fresh ECDSA P-256 certificate for 127.0.0.1 and localhost, valid for a
// day. (The simulator's built-in test certificate is RSA-1024, which strict TLS stacks refuse.)
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "stele-vcsim"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *faultTable) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		f.mu.Lock()
		list := make([]armedFault, 0, len(f.armed))
		for _, a := range f.armed {
			list = append(list, *a)
		}
		seen := make(map[string]int, len(f.seen))
		for k, v := range f.seen {
			seen[k] = v
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]interface{}{"faults": list, "tasks": seen})
	case http.MethodDelete:
		f.mu.Lock()
		n := len(f.armed)
		f.armed = nil
		f.seen = map[string]int{}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]interface{}{"cleared": n})
	case http.MethodPost:
		var req armedFault
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON body: " + err.Error()})
			return
		}
		if req.DescriptionID == "" || req.Fault == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "descriptionId and fault are required"})
			return
		}
		if req.Count == 0 {
			req.Count = 1
		}
		if req.Count < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "count must be positive"})
			return
		}
		if _, err := newFault(req.Fault); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		req.Fired = 0
		f.mu.Lock()
		f.armed = append(f.armed, &req)
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, req)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET, POST or DELETE"})
	}
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0 picks one)")
	useTLS := flag.Bool("tls", false, "serve https with the simulator's built-in localhost certificate")
	flag.Parse()

	user := os.Getenv("VCSIM_USERNAME")
	pass := os.Getenv("VCSIM_PASSWORD")
	if user == "" || pass == "" {
		fmt.Fprintln(os.Stderr, "stele-vcsim: set VCSIM_USERNAME and VCSIM_PASSWORD")
		os.Exit(2)
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		fmt.Fprintf(os.Stderr, "stele-vcsim: creating the VPX model: %v\n", err)
		os.Exit(1)
	}
	defer model.Remove()

	faults := &faultTable{newErr: newFault, seen: map[string]int{}}
	simulator.Map.AddHandler(faults)

	model.Service.Listen = &url.URL{
		Host: "127.0.0.1:" + strconv.Itoa(*port),
		User: url.UserPassword(user, pass),
	}
	model.Service.HandleFunc("/stele/faults", faults.serveHTTP)
	if *useTLS {
		cert, err := selfSignedCert()
		if err != nil {
			fmt.Fprintf(os.Stderr, "stele-vcsim: making a certificate: %v\n", err)
			os.Exit(1)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	server := model.Service.NewServer()

	sdk := *server.URL
	sdk.User = nil
	base := sdk
	base.Path = ""
	ready := map[string]string{
		"url":    base.String(),
		"sdk":    sdk.String(),
		"faults": base.String() + "/stele/faults",
	}
	if *useTLS {
		ready["certPem"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}))
	}
	line, _ := json.Marshal(ready)
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	server.Close()
}
