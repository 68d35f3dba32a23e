package s3

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// minPartSize is S3's smallest allowed non-final part of a multipart upload.
const minPartSize = 5 << 20

// maxParts is S3's limit on the parts of one multipart upload.
const maxParts = 10000

// maxPresignExpiry is the longest a SigV4 presigned URL may be valid.
const maxPresignExpiry = 7 * 24 * time.Hour

// DefaultPartSize is the part size when the configuration names none: large
// enough that a blob of 100 GiB fits in S3's 10,000 parts, small enough
// that the one part each writing upload holds in memory stays modest.
const DefaultPartSize = 16 << 20

// Config is where the S3 store keeps its objects.
type Config struct {
	// Bucket must exist; wharf does not create it.
	Bucket string
	// Prefix is prepended to every key ("" or ending in "/").
	Prefix string
	// Endpoint is the URL of the S3 API (https://s3.eu-west-1.amazonaws.com,
	// http://127.0.0.1:7070).
	Endpoint string
	// Region signs requests (SigV4); "us-east-1" when empty.
	Region string
	// PathStyle addresses buckets as ENDPOINT/BUCKET instead of
	// BUCKET.ENDPOINT, as most self-hosted S3 servers need.
	PathStyle bool
	// AccessKey, SecretKey and SessionToken are static credentials; when
	// AccessKey is empty the AWS environment variables and the shared
	// credentials file are used, in that order.
	AccessKey    string
	SecretKey    string
	SessionToken string
	// PartSize is the size of each multipart part and so the memory one
	// writing upload holds (DefaultPartSize when 0; at least 5 MiB).
	PartSize int64
	// RedirectExpiry, when not 0, turns on RedirectURL: presigned GET URLs
	// valid this long (at most S3's 7 days).
	RedirectExpiry time.Duration
	// PublicEndpoint is the endpoint as clients reach it, which redirect
	// URLs are signed for; Endpoint when empty.
	PublicEndpoint string
}

// ParseURL reads s3://BUCKET[/PREFIX]?endpoint=URL&region=R&path_style=true
// [&part_size=BYTES]. Credentials never come from the URL: a URL ends up in
// logs and process listings.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("storage URL: %w", err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("storage URL %q: scheme must be s3", raw)
	}
	if u.User != nil {
		return Config{}, errors.New("storage URL: put credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the configuration file, not in the URL")
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	q := u.Query()
	for key := range q {
		switch key {
		case "endpoint", "region", "path_style", "part_size":
		default:
			return Config{}, fmt.Errorf("storage URL: unknown parameter %q (known: endpoint, region, path_style, part_size)", key)
		}
	}
	c.Endpoint = q.Get("endpoint")
	c.Region = q.Get("region")
	if v := q.Get("path_style"); v != "" {
		if c.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("storage URL: path_style=%q is not true or false", v)
		}
	}
	if v := q.Get("part_size"); v != "" {
		if c.PartSize, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Config{}, fmt.Errorf("storage URL: part_size=%q is not a number of bytes", v)
		}
	}
	return c, c.Validate()
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	var errs []error
	if c.Bucket == "" {
		errs = append(errs, errors.New("s3: no bucket (s3://BUCKET/…)"))
	}
	if c.Endpoint == "" {
		errs = append(errs, errors.New("s3: no endpoint (?endpoint=https://…)"))
	} else if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("s3: endpoint %q is not an http(s) URL", c.Endpoint))
	} else if u.Path != "" && u.Path != "/" {
		errs = append(errs, fmt.Errorf("s3: endpoint %q has a path; put the bucket and prefix in the s3:// URL", c.Endpoint))
	}
	if c.PublicEndpoint != "" {
		if u, err := url.Parse(c.PublicEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("s3: public endpoint %q is not an http(s) URL without a path", c.PublicEndpoint))
		}
	}
	if c.RedirectExpiry < 0 || c.RedirectExpiry > maxPresignExpiry {
		errs = append(errs, fmt.Errorf("s3: redirect expiry %s is outside S3's limits (up to 7 days)", c.RedirectExpiry))
	}
	if c.PartSize != 0 && c.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("s3: part size %d is below S3's minimum of 5 MiB", c.PartSize))
	}
	return errors.Join(errs...)
}

func (c Config) partSize() int64 {
	if c.PartSize == 0 {
		return DefaultPartSize
	}
	return c.PartSize
}

func (c Config) region() string {
	if c.Region == "" {
		return "us-east-1"
	}
	return c.Region
}

// credentials are the static keys when given, else the AWS environment
// variables, else the shared credentials file (~/.aws/credentials,
// AWS_PROFILE). The instance-metadata provider is left out on purpose: it
// reaches for a link-local address that does not exist off cloud machines.
func (c Config) credentials() *credentials.Credentials {
	if c.AccessKey != "" {
		return credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken)
	}
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Profile: os.Getenv("AWS_PROFILE")},
	})
}
