package cloudauth_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/keyvalue-go/keyvalue/examples/cloudauth"
)

var static = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", Source: "test"}, nil
})

// TestIAM: the token is the presigned connect URL without its
// scheme, for the cache and the user, signed for elasticache in the
// region, valid 15 minutes; the username is the user id.
func TestIAM(t *testing.T) {
	provider := cloudauth.IAM(cloudauth.IAMTarget{Name: "my-cache", UserID: "app-user", Region: "eu-west-1"}, static)
	c, err := provider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("token: %s", c.Password)
	if c.Username != "app-user" || time.Until(c.ReauthAt) < 10*time.Hour || time.Until(c.ReauthAt) > 12*time.Hour {
		t.Errorf("username %q, re-authentication in %s", c.Username, time.Until(c.ReauthAt))
	}
	host, rawQuery, ok := strings.Cut(c.Password, "/?")
	if !ok || host != "my-cache" {
		t.Fatalf("token %q does not start with my-cache/?", c.Password)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"Action": "connect", "User": "app-user", "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
		"X-Amz-Expires": "900", "X-Amz-SignedHeaders": "host"} {
		if got := q.Get(key); got != want {
			t.Errorf("%s = %q; want %q", key, got, want)
		}
	}
	if cred := q.Get("X-Amz-Credential"); !strings.HasPrefix(cred, "AKIDEXAMPLE/") || !strings.HasSuffix(cred, "/eu-west-1/elasticache/aws4_request") {
		t.Errorf("X-Amz-Credential = %q", cred)
	}
	if len(q.Get("X-Amz-Signature")) != 64 {
		t.Errorf("X-Amz-Signature = %q", q.Get("X-Amz-Signature"))
	}
	// Serverless caches name the resource type; MemoryDB signs for memorydb.
	tok, err := cloudauth.SigV4Token(context.Background(), cloudauth.IAMTarget{Service: "memorydb", Name: "my-cluster", UserID: "u", Region: "us-east-1", Serverless: true}, static, time.Now())
	if err != nil || !strings.Contains(tok, "ResourceType=ServerlessCache") || !strings.Contains(tok, "%2Fmemorydb%2F") {
		t.Errorf("serverless MemoryDB token = %q, %v", tok, err)
	}
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return aws.Credentials{}, errors.New("no role") })
	if _, err := cloudauth.IAM(cloudauth.IAMTarget{Name: "c", UserID: "u", Region: "us-east-1"}, failing)(context.Background()); err == nil || !strings.Contains(err.Error(), "no role") {
		t.Errorf("with failing AWS credentials: %v", err)
	}
}

type fakeCredential struct {
	scopes []string
	token  azcore.AccessToken
}

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.scopes = o.Scopes
	return f.token, nil
}

// TestEntraID: the token for Azure's Redis scope, the object id as the
// username, re-authentication five minutes before the token expires.
func TestEntraID(t *testing.T) {
	expires := time.Now().Add(time.Hour)
	cred := &fakeCredential{token: azcore.AccessToken{Token: "eyJ0eXAi", ExpiresOn: expires}}
	c, err := cloudauth.EntraID(cred, "00000000-0000-0000-0000-000000000042")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "00000000-0000-0000-0000-000000000042" || c.Password != "eyJ0eXAi" || !c.ReauthAt.Equal(expires.Add(-5*time.Minute)) {
		t.Errorf("credentials = %+v", c)
	}
	if len(cred.scopes) != 1 || cred.scopes[0] != "https://redis.azure.com/.default" {
		t.Errorf("scopes = %v", cred.scopes)
	}
}
