package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/coder/websocket"
)

// API Gateway's event types and route keys.
const (
	eventConnect    = "CONNECT"
	eventMessage    = "MESSAGE"
	eventDisconnect = "DISCONNECT"

	routeConnect    = "$connect"
	routeDisconnect = "$disconnect"
	routeDefault    = "$default"
)

// unauthorized is the error message of a Lambda authorizer that API
// Gateway turns into 401: this exact text, nothing else.
const unauthorized = "Unauthorized"

// serveWebSocket runs one connection from its handshake to its
// $disconnect: authorizer, $connect, upgrade, then the connection's
// messages until it ends.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !g.enter() {
		writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer g.wg.Done()
	cl := g.newClient(r)
	defer g.releaseID(cl.id)
	hs := handshakeOf(r, cl)

	if g.cfg.Authorizer != nil {
		status, msg := g.authorize(cl, hs)
		if status != 0 {
			writeMessage(w, status, msg)
			return
		}
	}
	opts := &websocket.AcceptOptions{
		// API Gateway checks no Origin: pages served from anywhere
		// connect.
		InsecureSkipVerify: true,
		// API Gateway negotiates no permessage-deflate; with it, frame
		// sizes on the wire would no longer be the message's.
		CompressionMode: websocket.CompressionDisabled,
	}
	if g.cfg.Connect != nil {
		resp, ok := g.connect(w, cl, hs)
		if !ok {
			return
		}
		// Like API Gateway, the gateway echoes a subprotocol only when
		// $connect chose it, in its response's headers.
		for k, v := range resp.Headers {
			if strings.EqualFold(k, "Sec-WebSocket-Protocol") && v != "" {
				opts.Subprotocols = []string{v}
			}
		}
	}

	// The connection exists, for posts, from the moment $connect has
	// succeeded: a client that receives the 101 can be posted to.
	c := newConn(g, cl)
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
		g.disconnect(cl, closeGoingAway)
		return
	}
	g.conns[cl.id] = c
	g.mu.Unlock()

	var fw *frameWatch
	if g.cfg.MaxFrameBytes > 0 {
		fw = &frameWatch{max: g.cfg.MaxFrameBytes, msgMax: g.cfg.MaxMessageBytes}
		w = &watchedWriter{ResponseWriter: w, watch: fw}
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		c.end(statusDropped, false)
		g.disconnect(cl, c.status) // $connect succeeded, so $disconnect is owed
		return
	}
	if fw != nil {
		fw.ws = ws // before the first read: reads happen in run, below
	}
	ws.SetReadLimit(int64(g.cfg.MaxMessageBytes))
	c.setWS(ws)
	c.run()
}

// writeMessage answers a handshake as API Gateway does: the status and
// {"message": text}.
func writeMessage(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": text})
}

// authorize calls the authorizer and keeps its context in cl. It returns
// the status refusing the handshake, or 0 to go on.
func (g *Gateway) authorize(cl *client, hs handshake) (status int, msg string) {
	arn := "arn:aws:execute-api:" + g.cfg.Region + ":" + g.cfg.AccountID + ":" + g.cfg.APIID + "/" + g.cfg.Stage + "/" + routeConnect
	ev := authorizerEvent{
		Type:                            "REQUEST",
		MethodArn:                       arn,
		Headers:                         hs.headers,
		MultiValueHeaders:               hs.multiValueHeaders,
		QueryStringParameters:           hs.query,
		MultiValueQueryStringParameters: hs.multiValueQuery,
		StageVariables:                  map[string]string{},
		RequestContext:                  g.requestContext(cl, eventConnect, routeConnect),
	}
	start := time.Now()
	out, err := g.invoke(g.cfg.Authorizer, ev)
	switch {
	case err != nil && err.Error() == unauthorized:
		return http.StatusUnauthorized, unauthorized
	case err != nil:
		g.log.Error("gateway: authorizer failed", "conn", cl.id, "err", err)
		return http.StatusInternalServerError, "Internal server error"
	}
	auth, err := parseAuthorizerResult(out, arn, time.Since(start).Milliseconds())
	switch {
	case errors.Is(err, errPolicyDenied):
		return http.StatusForbidden, "Forbidden"
	case err != nil:
		g.log.Error("gateway: authorizer result refused", "conn", cl.id, "err", err)
		return http.StatusInternalServerError, "Internal server error"
	}
	cl.authorizer = auth
	return 0, ""
}

// connect calls $connect; when it refuses the connection (anything but
// 2xx), connect answers the handshake with its status and returns false.
func (g *Gateway) connect(w http.ResponseWriter, cl *client, hs handshake) (events.APIGatewayProxyResponse, bool) {
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:                         hs.headers,
		MultiValueHeaders:               hs.multiValueHeaders,
		QueryStringParameters:           hs.query,
		MultiValueQueryStringParameters: hs.multiValueQuery,
		RequestContext:                  g.requestContext(cl, eventConnect, routeConnect),
	}
	var resp events.APIGatewayProxyResponse
	out, err := g.invoke(g.cfg.Connect, ev)
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	if err != nil {
		g.log.Error("gateway: $connect failed", "conn", cl.id, "err", err)
		writeMessage(w, http.StatusInternalServerError, "Internal server error")
		return resp, false
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		w.WriteHeader(resp.StatusCode)
		w.Write([]byte(resp.Body))
		return resp, false
	}
	return resp, true
}

// disconnect delivers $disconnect for cl, closed with st.
func (g *Gateway) disconnect(cl *client, st closeStatus) {
	if g.cfg.Connect == nil {
		return
	}
	rc := g.requestContext(cl, eventDisconnect, routeDisconnect)
	rc.DisconnectStatusCode = int64(st.code)
	reason := st.reason
	rc.DisconnectReason = &reason
	ev := events.APIGatewayWebsocketProxyRequest{
		Headers:           map[string]string{"Host": cl.host, "X-Forwarded-For": cl.sourceIP},
		MultiValueHeaders: map[string][]string{"Host": {cl.host}, "X-Forwarded-For": {cl.sourceIP}},
		RequestContext:    rc,
	}
	if _, err := g.invoke(g.cfg.Connect, ev); err != nil {
		g.log.Error("gateway: $disconnect failed", "conn", cl.id, "err", err)
	}
}

// invoke calls fn with ev's JSON, bounded by IntegrationTimeout.
func (g *Gateway) invoke(fn lambda.Handler, ev any) ([]byte, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(g.base, g.cfg.IntegrationTimeout)
	defer cancel()
	return fn.Invoke(ctx, payload)
}
