package cybereasontest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

const (
	htmlType = "text/html;charset=UTF-8"
	jsonType = "application/json;charset=UTF-8"
)

// The console's pages. Clients recognise the login page by its title and its <app-login>
// element.
const (
	loginPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cybereason | Login</title>
<base href="/">
</head>
<body>
<app-login></app-login>
<noscript>Fake Cybereason console: sign in by posting username and password to /login.html.</noscript>
</body>
</html>
`
	appPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cybereason</title>
<base href="/">
</head>
<body>
<app></app>
</body>
</html>
`
	notFoundPage = `<!DOCTYPE html>
<html lang="en"><head><title>HTTP Status 404 - Not Found</title></head>
<body><h1>HTTP Status 404 - Not Found</h1></body></html>
`
)

// writeBody writes a response, gzip-compressed when the request accepts gzip, as the console does.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	if len(body) == 0 || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}

	writeGzip(w, status, contentType, func(out io.Writer) {
		_, _ = out.Write(body) // a failed write means the client went away
	})
}

// writeGzip writes a gzip-compressed response whose body write produces.
func writeGzip(w http.ResponseWriter, status int, contentType string, write func(io.Writer)) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Add("Vary", "Accept-Encoding")
	w.WriteHeader(status)
	compressor := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(compressor)
	compressor.Reset(w)
	write(compressor)
	_ = compressor.Close() // a failed write means the client went away
}

// gzipWriters holds gzip writers for reuse, because each one allocates about 1 MB of state. They
// compress with gzip.BestSpeed: the test's client decompresses any level alike, and the fake
// console shares the test's CPU, where the default level took about 18 ms per page of 1,000
// sensors.
var gzipWriters = sync.Pool{New: func() any {
	writer, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // the level is valid
	return writer
}}

// writeJSONError writes an error as {"status":"FAILURE","message":...}.
func writeJSONError(w http.ResponseWriter, r *http.Request, status int, message string) {
	body, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}{"FAILURE", message})
	writeBody(w, r, status, jsonType, body)
}

// acceptsGzip reports whether an Accept-Encoding header lists gzip without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		params = strings.ReplaceAll(params, " ", "")
		return params != "q=0" && params != "q=0.0" && params != "q=0.00" && params != "q=0.000"
	}
	return false
}
