// Drives kafkajs through Strait's client matrix: the same commands as the Go drivers
// (e2e/client_matrix_test.go lists them). kafkajs compresses with gzip itself and with
// snappy through kafkajs-snappy; its lz4 and zstd codecs are native modules, left out.
'use strict'

const crypto = require('crypto')
const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec

const codecs = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy }

// Logs go to stderr: stdout is the driver's answer.
const logCreator = () => ({ namespace, level, log }) => {
  if (level <= logLevel.WARN) process.stderr.write(`[kafkajs ${namespace}] ${log.message}\n`)
}

const kafka = (bootstrap) => new Kafka({ clientId: 'kafkajs-driver', brokers: [bootstrap], logLevel: logLevel.WARN, logCreator })

const key = (i) => `k${i % 100}`
const value = (i) => `v${String(i).padStart(8, '0')}`
const print = (line) => process.stdout.write(line + '\n')

function specials () {
  const large = Buffer.alloc(900 << 10)
  for (let i = 0; i < large.length; i++) large[i] = 97 + (i % 26)
  return [
    { key: 'headers', value: Buffer.from('with headers and a timestamp'), headers: { h1: 'one', h2: '' }, timestamp: '1700000000000' },
    { key: null, value: Buffer.from('null key') },
    { key: 'empty', value: Buffer.alloc(0) },
    { key: 'large', value: large }
  ]
}

async function withAdmin (bootstrap, fn) {
  const admin = kafka(bootstrap).admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

// consumeFromStart reads topic from its start, as a group of its own (kafkajs has no
// consumer without a group), until done returns true.
async function consumeFromStart (bootstrap, topic, groupId, onMessage) {
  const consumer = kafka(bootstrap).consumer({ groupId, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (onMessage(partition, message)) resolve()
      }
    }).catch(reject)
  })
  await consumer.disconnect()
}

const commands = {
  async metadata (bootstrap, topic) {
    await withAdmin(bootstrap, async (admin) => {
      const cluster = await admin.describeCluster()
      const md = await admin.fetchTopicMetadata({ topics: [topic] })
      print(JSON.stringify({
        brokers: cluster.brokers.map((b) => b.nodeId),
        partitions: md.topics[0].partitions.map((p) => ({ id: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr }))
      }))
    })
  },

  async create (bootstrap, topic, partitions, rf) {
    await withAdmin(bootstrap, (admin) => admin.createTopics({
      topics: [{ topic, numPartitions: Number(partitions), replicationFactor: Number(rf) }], waitForLeaders: true
    }))
  },

  async delete (bootstrap, topic) {
    await withAdmin(bootstrap, (admin) => admin.deleteTopics({ topics: [topic] }))
  },

  async produce (bootstrap, topic, codec, n) {
    if (!(codec in codecs)) throw new Error(`codec ${codec}`)
    const producer = kafka(bootstrap).producer()
    await producer.connect()
    const messages = []
    for (let i = 0; i < Number(n); i++) messages.push({ key: key(i), value: value(i) })
    for (let i = 0; i < messages.length; i += 1000) {
      await producer.send({ topic, compression: codecs[codec], acks: -1, messages: messages.slice(i, i + 1000) })
    }
    await producer.disconnect()
  },

  async consume (bootstrap, topic, n) {
    let left = Number(n)
    await consumeFromStart(bootstrap, topic, `consume-${topic}`, (partition, m) => {
      print(`${partition} ${m.offset} ${m.key} ${m.value}`)
      return --left === 0
    })
  },

  // group runs two members of one group until they have read n messages between
  // them; each commits what it read after every batch, and leaves on disconnect.
  async group (bootstrap, topic, groupId, n) {
    const seen = new Set()
    let finish
    const done = new Promise((resolve) => { finish = resolve })
    const members = [0, 1].map((id) => kafka(bootstrap).consumer({ groupId, maxWaitTimeInMs: 200 }))
    await Promise.all(members.map(async (consumer, id) => {
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          for (const m of batch.messages) {
            print(`${id} ${batch.partition} ${m.offset}`)
            seen.add(`${batch.partition}/${m.offset}`)
          }
          if (batch.messages.length > 0) {
            const next = (BigInt(batch.lastOffset()) + 1n).toString()
            await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }])
          }
          if (seen.size >= Number(n)) finish()
        }
      })
    }))
    await done
    await Promise.all(members.map((c) => c.disconnect()))
  },

  async admin (bootstrap, topic, groupId, broker) {
    await withAdmin(bootstrap, async (admin) => {
      const out = {}
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }]
      })
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }, { type: ConfigResourceTypes.BROKER, name: broker }]
      })
      out.broker_configs = {}
      for (const r of described.resources) {
        if (r.errorCode !== 0) throw new Error(`describe configs ${r.resourceName}: ${r.errorMessage}`)
        for (const e of r.configEntries) {
          if (r.resourceType === ConfigResourceTypes.TOPIC) out.retention_ms = e.configValue
          else out.broker_configs[e.configName] = e.configValue
        }
      }
      out.groups = (await admin.listGroups()).groups.map((g) => g.groupId)
      out.group_state = (await admin.describeGroups([groupId])).groups[0].state
      const committed = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions
      const ends = await admin.fetchTopicOffsets(topic)
      out.offsets = {}
      out.lag = {}
      for (const p of committed) {
        out.offsets[p.partition] = Number(p.offset)
        const end = ends.find((e) => e.partition === p.partition)
        out.lag[p.partition] = Number(end.high) - Number(p.offset)
      }
      print(JSON.stringify(out))
    })
  },

  async records (bootstrap, topic) {
    const producer = kafka(bootstrap).producer()
    await producer.connect()
    const records = specials()
    for (const r of records) await producer.send({ topic, acks: -1, messages: [{ partition: 0, ...r }] })
    await producer.disconnect()
    let left = records.length
    await consumeFromStart(bootstrap, topic, `records-${topic}`, (partition, m) => {
      const value = m.value || Buffer.alloc(0)
      print(JSON.stringify({
        key: m.key === null ? null : m.key.toString(),
        value_len: value.length,
        value_sha256: crypto.createHash('sha256').update(value).digest('hex'),
        headers: Object.entries(m.headers || {}).map(([k, v]) => [k, v === null ? '' : v.toString()]),
        ts: Number(m.timestamp)
      }))
      return --left === 0
    })
  },

  // txn commits a transaction of c0..c4 and aborts one of a0..a4.
  async txn (bootstrap, topic) {
    const producer = kafka(bootstrap).producer({ transactionalId: 'kafkajs-txn', idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    for (const prefix of ['c', 'a']) {
      const tx = await producer.transaction()
      await tx.send({ topic, messages: [0, 1, 2, 3, 4].map((i) => ({ value: `${prefix}${i}` })) })
      await (prefix === 'c' ? tx.commit() : tx.abort())
    }
    await producer.disconnect()
  }
}

async function main () {
  const [cmd, ...args] = process.argv.slice(2)
  if (cmd === 'version') {
    print(require('kafkajs/package.json').version)
    return
  }
  if (!(cmd in commands)) throw new Error(`unknown command ${cmd}`)
  await commands[cmd](...args)
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`${err.stack || err}\n`)
  process.exit(1)
})
