// Public types of requests and replies, and the wire's payload as parsed.
export {};
