// AudioWorklet: microphone samples -> 16-bit PCM packets of PACKET samples for the WebSocket.
// The AudioContext runs at 24 kHz (the realtime protocol's rate), so no resampling happens here.
const PACKET = 960; // 40 ms at 24 kHz: small enough for low latency, few enough messages

class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Int16Array(PACKET);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.buffer[this.filled++] = s < 0 ? s * 32768 : s * 32767;
      if (this.filled === PACKET) {
        this.port.postMessage(this.buffer.buffer, [this.buffer.buffer]);
        this.buffer = new Int16Array(PACKET);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("capture", Capture);
