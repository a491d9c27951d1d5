// Command kstatus prints what the real kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus, the
// health check Flux and other GitOps clients use) computes for each object it reads: a JSON
// array of objects on stdin, a JSON array of {"status", "message"} on stdout. Test helper only.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	var objects []map[string]interface{}
	data, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = utiljson.Unmarshal(data, &objects) // integers stay int64, as the API machinery expects
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: cannot read a JSON array of objects:", err)
		os.Exit(2)
	}
	out := make([]verdict, 0, len(objects))
	for _, obj := range objects {
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			out = append(out, verdict{Status: "Error", Message: err.Error()})
			continue
		}
		out = append(out, verdict{Status: res.Status.String(), Message: res.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
