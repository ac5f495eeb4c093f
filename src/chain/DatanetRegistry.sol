// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title DatanetRegistry
 * @notice The on-chain side of a datanet (DESIGN §4 flows 4, 6, 7): validator stakes, anchored
 * versions (checked against the active set's precommit certificate), funding and claims
 * of attributed rewards, and slashing of equivocating validators.
 *
 * Signatures are EIP-712 under the node's domain {name "datanet", version "1", chainId,
 * verifyingContract = this, salt = datanet id}; OpenZeppelin's EIP712 base has no salt, so
 * the domain separator is computed per datanet here.
 *
 * Validator-set changes (joins, leaves) take effect right after the next committed version:
 * the set that signs version h is the set active before h is committed.
 */
contract DatanetRegistry {
    // ---------------------------------------------------------------- types

    struct Params {
        /// Stake share that must sign, as an exact fraction (the node's rule is 2/3:
        /// signedStake * thresholdDenominator >= totalStake * thresholdNumerator). Never below 2/3.
        uint16 thresholdNumerator;
        uint16 thresholdDenominator;
        uint256 minStake;
        /// Seconds between a leave taking effect and the stake becoming withdrawable.
        uint64 unbondingDelay;
    }

    struct VersionHeader {
        uint64 height;
        bytes32 parent;
        bytes32 datasetRoot;
        uint64 recordCount;
        bytes32 attributionRoot;
        uint256 totalAttributed;
        bytes32 validatorSetHash;
        bytes32 version;
    }

    struct Vote {
        uint8 voteType;
        uint32 round;
        VersionHeader header;
    }

    struct Validator {
        uint256 stake;
        bool active;
        bool pendingJoin;
        bool pendingLeave;
        /// When a left validator's stake becomes withdrawable (0: not unbonding).
        uint64 unlockAt;
    }

    struct Datanet {
        bool exists;
        Params params;
        uint64 lastHeight;
        bytes32 lastVersion;
        bytes32 attributionRoot;
        uint256 totalAttributed;
        uint256 totalFunded;
        uint256 totalClaimed;
        uint256 totalStake;
        uint256 slashed;
        uint256 pendingLeaveCount;
        address[] active;
        address[] pendingJoins;
        address[] pendingLeaves;
    }

    // ---------------------------------------------------------------- constants

    bytes32 public constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract,bytes32 salt)");
    bytes32 public constant HEADER_TYPEHASH = keccak256(
        "VersionHeader(uint64 height,bytes32 parent,bytes32 datasetRoot,uint64 recordCount,bytes32 attributionRoot,uint256 totalAttributed,bytes32 validatorSetHash,bytes32 version)"
    );
    bytes32 public constant VOTE_TYPEHASH = keccak256(
        "Vote(uint8 voteType,uint32 round,VersionHeader header)VersionHeader(uint64 height,bytes32 parent,bytes32 datasetRoot,uint64 recordCount,bytes32 attributionRoot,uint256 totalAttributed,bytes32 validatorSetHash,bytes32 version)"
    );
    uint8 public constant PREVOTE = 1;
    uint8 public constant PRECOMMIT = 2;

    // ---------------------------------------------------------------- storage

    mapping(bytes32 => Datanet) private _datanets;
    mapping(bytes32 => mapping(address => Validator)) private _validators;
    mapping(bytes32 => mapping(address => uint256)) private _activeIndex; // index + 1 in Datanet.active
    mapping(bytes32 => mapping(uint64 => bytes32)) private _datasetRoots;
    mapping(bytes32 => mapping(address => uint256)) private _claimed;

    // ---------------------------------------------------------------- events

    event DatanetCreated(bytes32 indexed datanetId, address indexed creator, Params params, address[] validators, uint256[] stakes);
    event ValidatorJoinRequested(bytes32 indexed datanetId, address indexed validator, uint256 stake, bytes peerId);
    event ValidatorLeaveRequested(bytes32 indexed datanetId, address indexed validator);
    event ValidatorActivated(bytes32 indexed datanetId, address indexed validator, uint256 stake, uint64 height);
    event ValidatorDeactivated(bytes32 indexed datanetId, address indexed validator, uint64 height, uint64 unlockAt);
    event StakeWithdrawn(bytes32 indexed datanetId, address indexed validator, uint256 amount);
    event VersionCommitted(bytes32 indexed datanetId, uint64 indexed height, bytes32 indexed version, VersionHeader header, uint32 round, address submitter);
    event Funded(bytes32 indexed datanetId, address indexed from, uint256 amount, uint256 totalFunded);
    event Claimed(bytes32 indexed datanetId, address indexed account, uint256 amount, uint256 cumulativeAmount);
    event Slashed(bytes32 indexed datanetId, address indexed validator, uint256 amount, address reporter);

    // ---------------------------------------------------------------- errors

    error DatanetExists(bytes32 datanetId);
    error UnknownDatanet(bytes32 datanetId);
    error InvalidParams();
    error InvalidValidatorSet();
    error DuplicateValidator(address validator);
    error StakeTooLow(uint256 stake, uint256 minStake);
    error WrongValue(uint256 sent, uint256 expected);
    error AlreadyValidator(address validator);
    error NotActiveValidator(address validator);
    error LeaveAlreadyRequested(address validator);
    error LastValidator();
    error NothingToWithdraw(address validator);
    error StillBonded(uint64 unlockAt);
    error StaleHeight(uint64 height, uint64 lastHeight);
    error WrongParent(bytes32 parent, bytes32 expected);
    error OverAttributed(uint256 totalAttributed, uint256 totalFunded);
    error AttributionDecreased(uint256 totalAttributed, uint256 previous);
    error InvalidSignature(uint256 index);
    error UnsortedOrDuplicateSigner(address signer);
    error InsufficientStake(uint256 signedStake, uint256 totalStake);
    error ZeroAmount();
    error InvalidProof();
    error NothingToClaim(uint256 cumulativeAmount, uint256 claimed);
    error InsufficientFunds(uint256 requested, uint256 available);
    error TransferFailed();
    error NotConflicting();
    error SignersDiffer(address a, address b);
    error NothingToSlash(address validator);
    error UnknownVersion(uint64 height);

    // ---------------------------------------------------------------- datanets

    /// @notice Registers a datanet with its genesis validators; msg.value funds their stakes exactly.
    function createDatanet(bytes32 datanetId, Params calldata params, address[] calldata validators, uint256[] calldata stakes)
        external
        payable
    {
        Datanet storage d = _datanets[datanetId];
        if (d.exists) revert DatanetExists(datanetId);
        if (
            params.thresholdDenominator == 0 || params.thresholdNumerator > params.thresholdDenominator
                || uint256(params.thresholdNumerator) * 3 < uint256(params.thresholdDenominator) * 2
        ) revert InvalidParams();
        if (validators.length == 0 || validators.length != stakes.length) revert InvalidValidatorSet();
        uint256 sum;
        for (uint256 i = 0; i < validators.length; i++) {
            address v = validators[i];
            uint256 stake = stakes[i];
            if (v == address(0)) revert InvalidValidatorSet();
            if (stake < params.minStake || stake == 0) revert StakeTooLow(stake, params.minStake);
            if (_activeIndex[datanetId][v] != 0) revert DuplicateValidator(v);
            _validators[datanetId][v] = Validator({stake: stake, active: true, pendingJoin: false, pendingLeave: false, unlockAt: 0});
            d.active.push(v);
            _activeIndex[datanetId][v] = d.active.length;
            sum += stake;
        }
        if (msg.value != sum) revert WrongValue(msg.value, sum);
        d.exists = true;
        d.params = params;
        d.totalStake = sum;
        emit DatanetCreated(datanetId, msg.sender, params, validators, stakes);
    }

    /// @notice Adds to the datanet's reward pool.
    function fund(bytes32 datanetId) external payable {
        Datanet storage d = _existing(datanetId);
        if (msg.value == 0) revert ZeroAmount();
        d.totalFunded += msg.value;
        emit Funded(datanetId, msg.sender, msg.value, d.totalFunded);
    }

    // ---------------------------------------------------------------- validators

    /// @notice Stakes msg.value to join; the validator becomes active after the next committed version.
    function joinValidator(bytes32 datanetId, bytes calldata peerId) external payable {
        Datanet storage d = _existing(datanetId);
        Validator storage v = _validators[datanetId][msg.sender];
        if (v.active || v.pendingJoin || v.stake != 0) revert AlreadyValidator(msg.sender);
        if (msg.value < d.params.minStake || msg.value == 0) revert StakeTooLow(msg.value, d.params.minStake);
        v.stake = msg.value;
        v.pendingJoin = true;
        v.unlockAt = 0;
        d.pendingJoins.push(msg.sender);
        emit ValidatorJoinRequested(datanetId, msg.sender, msg.value, peerId);
    }

    /// @notice Leaves the set at the next committed version; the stake unbonds for unbondingDelay after it.
    function leaveValidator(bytes32 datanetId) external {
        Datanet storage d = _existing(datanetId);
        Validator storage v = _validators[datanetId][msg.sender];
        if (!v.active) revert NotActiveValidator(msg.sender);
        if (v.pendingLeave) revert LeaveAlreadyRequested(msg.sender);
        if (d.active.length - d.pendingLeaveCount <= 1) revert LastValidator();
        v.pendingLeave = true;
        d.pendingLeaveCount++;
        d.pendingLeaves.push(msg.sender);
        emit ValidatorLeaveRequested(datanetId, msg.sender);
    }

    /// @notice Withdraws the stake of a validator whose leave took effect at least unbondingDelay ago.
    function withdraw(bytes32 datanetId) external {
        _existing(datanetId);
        Validator storage v = _validators[datanetId][msg.sender];
        if (v.active || v.pendingJoin || v.stake == 0 || v.unlockAt == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < v.unlockAt) revert StillBonded(v.unlockAt);
        uint256 amount = v.stake;
        v.stake = 0;
        v.unlockAt = 0;
        emit StakeWithdrawn(datanetId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- versions

    /**
     * @notice Anchors a finalized version: `signatures` are precommits (voteType 2, `round`) over
     * `header` by distinct active validators, sorted by signer address ascending, holding at
     * least the threshold fraction of the active stake.
     */
    function commitVersion(bytes32 datanetId, uint32 round, VersionHeader calldata header, bytes[] calldata signatures)
        external
    {
        Datanet storage d = _existing(datanetId);
        uint64 last = d.lastHeight;
        if (header.height <= last) revert StaleHeight(header.height, last);
        if (last > 0 && header.height == last + 1 && header.parent != d.lastVersion) {
            revert WrongParent(header.parent, d.lastVersion);
        }
        if (header.totalAttributed > d.totalFunded) revert OverAttributed(header.totalAttributed, d.totalFunded);
        if (header.totalAttributed < d.totalAttributed) revert AttributionDecreased(header.totalAttributed, d.totalAttributed);

        bytes32 digest = _digest(datanetId, _voteHash(PRECOMMIT, round, header));
        uint256 signed;
        address previous;
        for (uint256 i = 0; i < signatures.length; i++) {
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError || signer == address(0)) revert InvalidSignature(i);
            if (signer <= previous) revert UnsortedOrDuplicateSigner(signer);
            previous = signer;
            Validator storage v = _validators[datanetId][signer];
            if (!v.active) revert NotActiveValidator(signer);
            signed += v.stake;
        }
        uint256 total = d.totalStake;
        if (total == 0 || signed * d.params.thresholdDenominator < total * d.params.thresholdNumerator) {
            revert InsufficientStake(signed, total);
        }

        d.lastHeight = header.height;
        d.lastVersion = header.version;
        d.attributionRoot = header.attributionRoot;
        d.totalAttributed = header.totalAttributed;
        _datasetRoots[datanetId][header.height] = header.datasetRoot;
        emit VersionCommitted(datanetId, header.height, header.version, header, round, msg.sender);
        _applySetChanges(datanetId, d, header.height);
    }

    function _applySetChanges(bytes32 datanetId, Datanet storage d, uint64 height) private {
        uint256 n = d.pendingLeaves.length;
        if (n > 0) {
            uint64 unlockAt = uint64(block.timestamp) + d.params.unbondingDelay;
            for (uint256 i = 0; i < n; i++) {
                address a = d.pendingLeaves[i];
                Validator storage v = _validators[datanetId][a];
                if (!v.pendingLeave) continue; // slashed meanwhile
                v.pendingLeave = false;
                v.unlockAt = unlockAt;
                _removeActive(datanetId, d, a, v);
                emit ValidatorDeactivated(datanetId, a, height, unlockAt);
            }
            delete d.pendingLeaves;
            d.pendingLeaveCount = 0;
        }
        n = d.pendingJoins.length;
        if (n > 0) {
            for (uint256 i = 0; i < n; i++) {
                address a = d.pendingJoins[i];
                Validator storage v = _validators[datanetId][a];
                if (!v.pendingJoin) continue; // slashed meanwhile
                v.pendingJoin = false;
                v.active = true;
                d.active.push(a);
                _activeIndex[datanetId][a] = d.active.length;
                d.totalStake += v.stake;
                emit ValidatorActivated(datanetId, a, v.stake, height);
            }
            delete d.pendingJoins;
        }
    }

    function _removeActive(bytes32 datanetId, Datanet storage d, address a, Validator storage v) private {
        uint256 idx = _activeIndex[datanetId][a];
        uint256 lastIdx = d.active.length;
        if (idx != lastIdx) {
            address moved = d.active[lastIdx - 1];
            d.active[idx - 1] = moved;
            _activeIndex[datanetId][moved] = idx;
        }
        d.active.pop();
        delete _activeIndex[datanetId][a];
        v.active = false;
        d.totalStake -= v.stake;
    }

    /// @notice Whether `recordHash` is in the dataset of the committed version at `height` (src/merkle/tree.ts).
    function verifyRecord(bytes32 datanetId, uint64 height, bytes32 recordHash, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        _existingView(datanetId);
        bytes32 root = _datasetRoots[datanetId][height];
        if (root == bytes32(0)) revert UnknownVersion(height);
        bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), recordHash));
        return MerkleProof.verifyCalldata(proof, root, leaf, _sha256Pair);
    }

    function _sha256Pair(bytes32 a, bytes32 b) private pure returns (bytes32) {
        return a < b ? sha256(abi.encodePacked(a, b)) : sha256(abi.encodePacked(b, a));
    }

    // ---------------------------------------------------------------- rewards

    /**
     * @notice Pays `account` its cumulative attributed amount (a leaf of the latest attribution
     * root, OpenZeppelin StandardMerkleTree encoding of (address, uint256)) minus what it claimed.
     */
    function claim(bytes32 datanetId, address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        Datanet storage d = _existing(datanetId);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulativeAmount))));
        if (!MerkleProof.verifyCalldata(proof, d.attributionRoot, leaf)) revert InvalidProof();
        uint256 already = _claimed[datanetId][account];
        if (cumulativeAmount <= already) revert NothingToClaim(cumulativeAmount, already);
        uint256 amount = cumulativeAmount - already;
        uint256 available = d.totalFunded - d.totalClaimed;
        if (amount > available) revert InsufficientFunds(amount, available);
        _claimed[datanetId][account] = cumulativeAmount;
        d.totalClaimed += amount;
        emit Claimed(datanetId, account, amount, cumulativeAmount);
        _pay(account, amount);
    }

    // ---------------------------------------------------------------- slashing

    /// @notice Evidence of equivocation: two different votes for one (height, round, type) by one signer.
    function slash(bytes32 datanetId, Vote calldata a, bytes calldata sigA, Vote calldata b, bytes calldata sigB) external {
        Datanet storage d = _existing(datanetId);
        if (a.voteType != b.voteType || a.round != b.round || a.header.height != b.header.height) revert NotConflicting();
        bytes32 hashA = _voteHash(a.voteType, a.round, a.header);
        bytes32 hashB = _voteHash(b.voteType, b.round, b.header);
        if (hashA == hashB) revert NotConflicting();
        address signerA = _recover(_digest(datanetId, hashA), sigA, 0);
        address signerB = _recover(_digest(datanetId, hashB), sigB, 1);
        if (signerA != signerB) revert SignersDiffer(signerA, signerB);
        Validator storage v = _validators[datanetId][signerA];
        uint256 amount = v.stake;
        if (amount == 0) revert NothingToSlash(signerA);
        if (v.active) {
            _removeActive(datanetId, d, signerA, v);
            emit ValidatorDeactivated(datanetId, signerA, d.lastHeight, 0);
        }
        if (v.pendingLeave) {
            v.pendingLeave = false;
            d.pendingLeaveCount--;
        }
        v.pendingJoin = false;
        v.stake = 0;
        v.unlockAt = 0;
        d.slashed += amount; // burned: stays in the contract, never paid out
        emit Slashed(datanetId, signerA, amount, msg.sender);
    }

    // ---------------------------------------------------------------- views

    function domainSeparator(bytes32 datanetId) public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256("datanet"), keccak256("1"), block.chainid, address(this), datanetId));
    }

    /// @notice The EIP-712 digest of a vote under the datanet's domain (what src/consensus/version.ts voteDigest computes).
    function voteDigest(bytes32 datanetId, Vote calldata vote) external view returns (bytes32) {
        return _digest(datanetId, _voteHash(vote.voteType, vote.round, vote.header));
    }

    /// @notice The active validator set: addresses and stakes.
    function validatorsOf(bytes32 datanetId) external view returns (address[] memory validators, uint256[] memory stakes) {
        Datanet storage d = _existingView(datanetId);
        validators = d.active;
        stakes = new uint256[](validators.length);
        for (uint256 i = 0; i < validators.length; i++) {
            stakes[i] = _validators[datanetId][validators[i]].stake;
        }
    }

    function validator(bytes32 datanetId, address account) external view returns (Validator memory) {
        return _validators[datanetId][account];
    }

    function datanet(bytes32 datanetId)
        external
        view
        returns (
            Params memory params,
            uint64 lastHeight,
            bytes32 lastVersion,
            bytes32 attributionRoot,
            uint256 totalAttributed,
            uint256 totalFunded,
            uint256 totalClaimed,
            uint256 totalStake,
            uint256 slashed
        )
    {
        Datanet storage d = _existingView(datanetId);
        return (d.params, d.lastHeight, d.lastVersion, d.attributionRoot, d.totalAttributed, d.totalFunded, d.totalClaimed, d.totalStake, d.slashed);
    }

    function datasetRootAt(bytes32 datanetId, uint64 height) external view returns (bytes32) {
        return _datasetRoots[datanetId][height];
    }

    function claimed(bytes32 datanetId, address account) external view returns (uint256) {
        return _claimed[datanetId][account];
    }

    // ---------------------------------------------------------------- internals

    function _existing(bytes32 datanetId) private view returns (Datanet storage d) {
        d = _datanets[datanetId];
        if (!d.exists) revert UnknownDatanet(datanetId);
    }

    function _existingView(bytes32 datanetId) private view returns (Datanet storage d) {
        return _existing(datanetId);
    }

    function _headerHash(VersionHeader calldata h) private pure returns (bytes32) {
        return keccak256(
            abi.encode(
                HEADER_TYPEHASH,
                h.height,
                h.parent,
                h.datasetRoot,
                h.recordCount,
                h.attributionRoot,
                h.totalAttributed,
                h.validatorSetHash,
                h.version
            )
        );
    }

    function _voteHash(uint8 voteType, uint32 round, VersionHeader calldata h) private pure returns (bytes32) {
        return keccak256(abi.encode(VOTE_TYPEHASH, voteType, round, _headerHash(h)));
    }

    function _digest(bytes32 datanetId, bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(datanetId), structHash));
    }

    function _recover(bytes32 digest, bytes calldata sig, uint256 index) private pure returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecoverCalldata(digest, sig);
        if (err != ECDSA.RecoverError.NoError || signer == address(0)) revert InvalidSignature(index);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
