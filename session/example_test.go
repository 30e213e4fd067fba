package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/session"
)

func Example() {
	// The server comes from KEYVALUE_URL (or KEYVALUE_CONFIG, KEYVALUE_*).
	cfg, _, err := keyvalue.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	store, err := session.New(client, session.Options{Prefix: "fe", Key: []byte("use 32+ random bytes from a secret store")})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := store.Create(ctx, session.Record{UserID: "42", Data: json.RawMessage(`{"cart":[7]}`)})
	if err != nil {
		log.Fatal(err)
	}

	// On login: a new id, same session; the old cookie still reads it briefly.
	newID, err := store.Renew(ctx, rec.ID)
	if err != nil {
		log.Fatal(err)
	}
	got, err := store.Get(ctx, newID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.UserID, string(got.Data))

	n, err := store.RemoveByUser(ctx, "42") // log out everywhere
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("removed", n)
	// Output:
	// 42 {"cart":[7]}
	// removed 1
}
