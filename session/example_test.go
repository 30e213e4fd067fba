package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/session"
)

func Example() {
	addr, stop := kvtest.ExampleServer() // a throwaway local server
	defer stop()
	client, _ := keyvalue.Open(keyvalue.Config{Addrs: []string{addr}})
	defer client.Close()
	ctx := context.Background()

	store, err := session.New(client, session.Options{Prefix: "fe", Key: []byte("use 32+ random bytes from a secret store")})
	if err != nil {
		log.Fatal(err)
	}
	rec, _ := store.Create(ctx, session.Record{UserID: "42", Data: json.RawMessage(`{"cart":[7]}`)})

	// On login: a new id, same session; the old cookie still reads it briefly.
	newID, _ := store.Renew(ctx, rec.ID)
	got, _ := store.Get(ctx, newID)
	fmt.Println(got.UserID, string(got.Data))

	n, _ := store.RemoveByUser(ctx, "42") // log out everywhere
	fmt.Println("removed", n)
	// Output:
	// 42 {"cart":[7]}
	// removed 1
}
