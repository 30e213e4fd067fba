// Package cloudauth holds two credentials providers for keyvalue.Config
// (keyvalue.CredentialsProvider), as recipes to copy: short-lived tokens
// of AWS IAM for ElastiCache and MemoryDB, and of Microsoft Entra ID for
// Azure Cache for Redis and Azure Managed Redis. It is its own module so
// that the cloud SDKs stay out of keyvalue's go.mod.
//
//	awsCfg, err := config.LoadDefaultConfig(ctx) // github.com/aws/aws-sdk-go-v2/config
//	...
//	client, err := keyvalue.Open(keyvalue.Config{
//		Addrs:       []string{"my-cache.xxxxxx.use1.cache.amazonaws.com:6379"},
//		TLS:         keyvalue.TLSConfig{Enabled: true}, // IAM needs TLS
//		Credentials: cloudauth.IAM(cloudauth.IAMTarget{Name: "my-cache", UserID: "app-user", Region: awsCfg.Region}, awsCfg.Credentials),
//	})
package cloudauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/keyvalue-go/keyvalue"
)

// iamTokenLifetime is how long an IAM token may be used to open a
// connection (ElastiCache and MemoryDB accept 15 minutes at most).
const iamTokenLifetime = 15 * time.Minute

// iamConnectionLifetime is how long ElastiCache keeps a connection
// authenticated with an IAM token: 12 hours, unless it authenticates
// again with a new token. The provider asks for that an hour before.
const iamConnectionLifetime = 11 * time.Hour

// emptyPayloadHash is the SHA-256 of an empty body, which a presigned
// GET carries.
var emptyPayloadHash = func() string { h := sha256.Sum256(nil); return hex.EncodeToString(h[:]) }()

// IAMTarget names what an IAM token opens.
type IAMTarget struct {
	// Service is "elasticache" (the default) or "memorydb".
	Service string
	// Name is the cache's id, lower-case: an ElastiCache replication group
	// or serverless cache, or a MemoryDB cluster.
	Name string
	// Serverless is true for an ElastiCache serverless cache.
	Serverless bool
	// UserID is the IAM-enabled user's id, which is also its username.
	UserID string
	// Region is the AWS region of the cache.
	Region string
}

// IAM returns a provider of IAM authentication tokens for target, signed
// with creds (awsCfg.Credentials from config.LoadDefaultConfig: a role, an
// instance profile, IRSA). Each new connection gets a freshly signed token
// (a local computation once the AWS credentials are retrieved, which the
// SDK caches); each connection authenticates again with a new token every
// 11 hours, within the 12 hours ElastiCache keeps it.
func IAM(target IAMTarget, creds aws.CredentialsProvider) keyvalue.CredentialsProvider {
	return func(ctx context.Context) (keyvalue.Credentials, error) {
		token, err := SigV4Token(ctx, target, creds, time.Now())
		if err != nil {
			return keyvalue.Credentials{}, err
		}
		return keyvalue.Credentials{Username: target.UserID, Password: token, ReauthAt: time.Now().Add(iamConnectionLifetime)}, nil
	}
}

// SigV4Token signs target's IAM authentication token at now: a presigned
// GET https://NAME/?Action=connect&User=USER, valid for 15 minutes,
// without its "https://".
func SigV4Token(ctx context.Context, target IAMTarget, creds aws.CredentialsProvider, now time.Time) (string, error) {
	service := target.Service
	if service == "" {
		service = "elasticache"
	}
	q := url.Values{"Action": {"connect"}, "User": {target.UserID}}
	if target.Serverless {
		q.Set("ResourceType", "ServerlessCache")
	}
	q.Set("X-Amz-Expires", fmt.Sprint(int(iamTokenLifetime.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+target.Name+"/?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("cloudauth: IAM token request: %w", err)
	}
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("cloudauth: AWS credentials: %w", err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, c, req, emptyPayloadHash, service, target.Region, now)
	if err != nil {
		return "", fmt.Errorf("cloudauth: sign the IAM token: %w", err)
	}
	return strings.TrimPrefix(signed, "https://"), nil
}

// entraScope is the scope of Azure's Redis data plane.
const entraScope = "https://redis.azure.com/.default"

// EntraID returns a provider of Microsoft Entra ID tokens for Azure Cache
// for Redis or Azure Managed Redis: cred is any azcore.TokenCredential
// (azidentity.NewDefaultAzureCredential, a managed identity, a workload
// identity), objectID the object (principal) id of that identity, which
// the cache knows as the user. Each connection authenticates again with a
// new token five minutes before its token expires, as Azure requires.
func EntraID(cred azcore.TokenCredential, objectID string) keyvalue.CredentialsProvider {
	return func(ctx context.Context) (keyvalue.Credentials, error) {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{entraScope}})
		if err != nil {
			return keyvalue.Credentials{}, fmt.Errorf("cloudauth: Entra ID token: %w", err)
		}
		return keyvalue.Credentials{Username: objectID, Password: tok.Token, ReauthAt: tok.ExpiresOn.Add(-5 * time.Minute)}, nil
	}
}
