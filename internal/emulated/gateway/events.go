package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// newID returns an id in API Gateway's look: 11 random bytes in URL-safe
// base64, 16 characters ending in "=" ("TWegAcC4EowCHnA="). Connection,
// request and message ids all have it.
func newID() string {
	var b [11]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.URLEncoding.EncodeToString(b[:])
}

// allocID returns a connection id no open or opening connection has.
// 88 random bits make a collision all but impossible; the check makes it
// impossible, since ids are how posts find connections.
func (g *Gateway) allocID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		id := newID()
		if !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func (g *Gateway) releaseID(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.ids, id)
}

// requestTimeLayout is the layout of requestContext.requestTime
// ("20/Jan/2024:11:55:00 +0000").
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// client is what every event of one connection says about it.
type client struct {
	id          string
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	domainName  string
	host        string
	// authorizer is requestContext.authorizer: the authorizer's context
	// with principalId and integrationLatency added; nil without an
	// authorizer.
	authorizer map[string]any
}

func (g *Gateway) newClient(r *http.Request) *client {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return &client{
		id:          g.allocID(),
		connectedAt: time.Now(),
		sourceIP:    ip,
		userAgent:   r.UserAgent(),
		domainName:  or(g.cfg.DomainName, r.Host),
		host:        r.Host,
	}
}

// requestContext is the requestContext of an event of c, with a new
// request id.
func (g *Gateway) requestContext(c *client, eventType, routeKey string) events.APIGatewayWebsocketProxyRequestContext {
	now := time.Now()
	id := newID()
	rc := events.APIGatewayWebsocketProxyRequestContext{
		Stage:             g.cfg.Stage,
		RequestID:         id,
		ExtendedRequestID: id,
		Identity:          events.APIGatewayRequestIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
		APIID:             g.cfg.APIID,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		ConnectionID:      c.id,
		DomainName:        c.domainName,
		EventType:         eventType,
		MessageDirection:  "IN",
		RequestTime:       now.UTC().Format(requestTimeLayout),
		RequestTimeEpoch:  now.UnixMilli(),
		RouteKey:          routeKey,
	}
	if c.authorizer != nil { // a nil map in an interface would encode as null
		rc.Authorizer = c.authorizer
	}
	return rc
}

// handshake holds the parts of the handshake request that $connect and
// its authorizer receive.
type handshake struct {
	headers           map[string]string
	multiValueHeaders map[string][]string
	query             map[string]string
	multiValueQuery   map[string][]string
}

// handshakeOf reads r's headers and query string as API Gateway passes
// them on: single-value maps keep the last value, and the headers API
// Gateway adds in front of a client (Host, X-Forwarded-*) are there.
// Header names come in Go's canonical form, not as the client spelled
// them.
func handshakeOf(r *http.Request, c *client) handshake {
	mv := make(map[string][]string, len(r.Header)+4)
	for k, vs := range r.Header {
		mv[k] = append([]string(nil), vs...)
	}
	mv["Host"] = []string{r.Host}
	mv["X-Forwarded-For"] = append(mv["X-Forwarded-For"], c.sourceIP)
	_, port, _ := net.SplitHostPort(r.Host)
	mv["X-Forwarded-Port"] = []string{or(port, "80")}
	mv["X-Forwarded-Proto"] = []string{"http"}
	h := handshake{headers: lastValues(mv), multiValueHeaders: mv}
	if q := r.URL.Query(); len(q) > 0 {
		h.multiValueQuery = q
		h.query = lastValues(q)
	}
	return h
}

func lastValues(mv map[string][]string) map[string]string {
	m := make(map[string]string, len(mv))
	for k, vs := range mv {
		if len(vs) > 0 {
			m[k] = vs[len(vs)-1]
		}
	}
	return m
}

// authorizerEvent is the event of a REQUEST authorizer on a WebSocket
// API: events.APIGatewayCustomAuthorizerRequestTypeRequest's members,
// with the WebSocket request context API Gateway sends (connectionId,
// routeKey, eventType...), which that type's context lacks. It decodes
// into that type.
type authorizerEvent struct {
	Type                            string                                        `json:"type"`
	MethodArn                       string                                        `json:"methodArn"` //nolint:staticcheck // the wire name
	Headers                         map[string]string                             `json:"headers,omitempty"`
	MultiValueHeaders               map[string][]string                           `json:"multiValueHeaders,omitempty"`
	QueryStringParameters           map[string]string                             `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string                           `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string                             `json:"stageVariables"`
	RequestContext                  events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}
