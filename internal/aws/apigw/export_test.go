package apigw

// UseSDKPosts makes p post through the SDK's PostToConnection, as it did
// before it signed its posts itself: the baseline that BenchmarkPostCost
// measures beside the default, and a check that both paths behave alike.
func UseSDKPosts(p *Poster) { p.sdkPosts = true }

// OnTry makes p call f with every try it makes, before sending it.
func OnTry(p *Poster, f func(id string, frame []byte)) { p.onTry = f }
